"""``discover`` reads the hosts' wg-quick files: the hosts' snapshot (the very script SSH runs) run
in the nodes of a lab built from an installer's files, each node with that installer's file of its
own as /etc/wireguard/IFACE.conf (bound there in a mount namespace of the snapshot's alone: the
machine's own /etc/wireguard is never touched). The written lab file brings those interfaces up
with wg-quick, leaves out what wg-quick made, marks the rules PostUp made, notes DNS without
resolvconf, and no key of any file or of the lab leaves the nodes."""
from __future__ import annotations

import shutil
from pathlib import Path

from wgtrace.hosts.discover import discover
from wgtrace.hosts.nodedata import Notes
from wgtrace.model.labfile import load_lab
from wgtrace.model.tomlout import lab_toml
from wgtrace.nodes.sshstate import parse_snapshot, snapshot_script
from wgtrace.wgquick import import_files
from wgtrace.wgquick.keys import KEY_WORD_RE
from wgtrace.wgquick.onhost import annotate

DATA = Path(__file__).resolve().parents[1] / "data" / "wgquick" / "angristan"
FILES = {"server": ("wg0.conf", "wg0"), "alice": ("wg0-client-alice.conf", "wg0"),
         "bob": ("wg0-client-bob.conf", "wg0-client-bob")}


def snapshot(h, etc: str | None) -> str:
    script, mark = snapshot_script(False)
    argv = ["sh", "-c", script]
    if etc:
        argv = ["unshare", "--mount", "sh", "-c", f'mount --bind {etc} /etc/wireguard && exec sh -c "$0"', script]
    r = h.run(argv, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout, mark


def test_discover_reads_wg_quick_files_and_keeps_their_keys_on_the_hosts(lab_factory, tmp_path):
    r = import_files([("server", DATA / "wg0.conf"), (None, DATA / "wg0-client-alice.conf"),
                      (None, DATA / "wg0-client-bob.conf")])
    path = tmp_path / "angristan.toml"
    path.write_text(r.text())
    lab = lab_factory.up(lab_file=str(path))
    states, raw = {}, ""
    for name in lab.model.nodes:
        h = lab.node(name)
        etc = None
        if name in FILES:
            d = h.home_dir / "etc-wireguard"
            d.mkdir(mode=0o700)
            file, iface = FILES[name]
            shutil.copy(DATA / file, d / f"{iface}.conf")
            etc = "/root/etc-wireguard"
        out, mark = snapshot(h, etc)
        raw += out
        states[name] = parse_snapshot(out, mark)
    assert states["server"].wg_files["/etc/wireguard/wg0.conf"].count("PostUp") == 6
    notes = Notes()
    data, notes = discover("found", states, {}, "from the lab's nodes")
    annotate(data["nodes"], states, notes)
    text = lab_toml(data, ["discovered"] + list(notes))
    out = tmp_path / "found.toml"
    out.write_text(text)
    found = load_lab(str(out))                           # what wg-quick makes is not declared twice

    lines = "".join((DATA / f).read_text() for f, _ in FILES.values()).splitlines()
    secrets = {k for line in lines if line.lower().startswith(("privatekey", "presharedkey"))
               for k in KEY_WORD_RE.findall(line)}
    secrets |= {(lab.node(n).home_dir / "private").read_text().strip() for n in FILES}
    assert len(secrets) == 8
    assert not [k for k in secrets if k in raw or k in text]
    assert not KEY_WORD_RE.search(text)

    server, alice = found.nodes["server"], found.nodes["alice"]
    assert server.wireguard["wg0"].quick and alice.wireguard["wg0"].quick
    assert alice.wireguard["wg0"].quick.dns == ("1.1.1.1", "1.0.0.1")
    assert [r for r in alice.routes if r.table == 51820] == [r for r in alice.routes if r.made_by]
    assert all(r.made_by == "wg0" for r in alice.rules) and len(alice.rules) == 4
    assert '{ rule = "-t nat -A POSTROUTING -o ens3 -j MASQUERADE" },  # PostUp, /etc/wireguard/wg0.conf:7' in text
    assert "listen_port" not in text.split("[nodes.alice.wireguard.wg0]")[1].split("[nodes.")[0]
    assert not [n for n in notes if "ip rule" in n]
    assert text.count("# PostUp, /etc/wireguard/wg0.conf:") == 6
    if not shutil.which("resolvconf"):
        assert any(n.startswith("alice: /etc/wireguard/wg0.conf has DNS = 1.1.1.1, 1.0.0.1, and this host has "
                                "no resolvconf: `wg-quick up wg0` fails here") for n in notes)
