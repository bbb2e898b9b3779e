"""Importing wg-quick files into a lab (wgtrace/wgquick/): the files five installers write (from
their templates, with fresh keys: tests/data/wgquick/README.md), each as a golden lab file; the
lab-file loader takes the result; no key of any file reaches the output; files that do not fit
together are findings (``lab export``'s files coming back: test_wgquick_roundtrip.py).

Golden files: ``tests/data/wgquick/<installer>/expected.toml``, one test case each. Rewrite them
after a deliberate change with ``WGTRACE_UPDATE_GOLDEN=1 python3 -m pytest tests/unit`` and
review the diff.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from wgtrace.errors import LabFileError
from wgtrace.wgquick import import_files, node_name
from wgtrace.wgquick.keys import KEY_WORD_RE, public_of
from wgtrace.model.labfile import load_lab
from wgtrace.model.parse import parse_lab

DATA = Path(__file__).resolve().parents[1] / "data" / "wgquick"
UPDATE = os.environ.get("WGTRACE_UPDATE_GOLDEN") == "1"
INSTALLERS = {          # as `wgtrace lab import` takes them: NODE=FILE, or FILE (named after the file)
    "angristan": ["server=wg0.conf", "wg0-client-alice.conf", "wg0-client-bob.conf"],
    "angristan-firewalld": ["server=wg0.conf", "wg0-client-alice.conf"],
    "nyr": ["server=wg0.conf", "phone.conf", "laptop.conf"],
    "pivpn": ["server=wg0.conf", "configs/laptop.conf", "configs/phone.conf"],
    "wg-easy": ["server=wg0.conf", "alice.conf", "bob.conf"],
    "algo": ["server=wg0.conf", "phone.conf", "laptop.conf"],
}
IPV4_ONLY = {"pivpn"}
NAT_OUTSIDE_THE_FILE = {"angristan-firewalld": 2, "nyr": 2, "pivpn": 1, "algo": 2}   # NAT inferred, per family


def pairs(args: list[str]) -> list[tuple[str | None, Path]]:
    return [(a.split("=")[0], Path(a.split("=")[1])) if "=" in a else (None, Path(a)) for a in args]


def imported(installer: str, monkeypatch):
    monkeypatch.chdir(DATA / installer)
    return import_files(pairs(INSTALLERS[installer]), installer.replace("-", "")[:12])


def all_keys(installer: str) -> set[str]:
    """Every key in the installer's files (private, preshared, public), and every private key's public key."""
    found = set()
    for p in (DATA / installer).rglob("*.conf"):
        found |= set(KEY_WORD_RE.findall(p.read_text()))
    import base64
    return found | {public_of(base64.b64decode(k)) for k in found}


@pytest.mark.parametrize("installer", sorted(INSTALLERS))
def test_golden_lab_file(installer, monkeypatch):
    got = imported(installer, monkeypatch).text()
    golden = DATA / installer / "expected.toml"
    if UPDATE:
        golden.write_text(got)
    assert got == golden.read_text()


@pytest.mark.parametrize("installer", sorted(INSTALLERS))
def test_the_lab_file_loader_takes_it(installer, monkeypatch, tmp_path):
    r = imported(installer, monkeypatch)
    lab = parse_lab(r.lab, installer)
    assert {n for n in lab.nodes} >= {"server", "internet", "web"}
    path = tmp_path / "imported.toml"
    path.write_text(r.text())
    assert load_lab(str(path)).checks == lab.checks


@pytest.mark.parametrize("installer", sorted(INSTALLERS))
def test_no_key_of_any_file_in_the_output(installer, monkeypatch):
    r = imported(installer, monkeypatch)
    keys = all_keys(installer)
    assert len(keys) >= 6
    shown = "\n".join([r.text(), repr(r.lab), *r.notes, *r.findings, *r.warnings])
    assert not [k for k in keys if k in shown]
    assert not KEY_WORD_RE.search(shown)


@pytest.mark.parametrize("installer", sorted(INSTALLERS))
def test_peers_matched_and_what_was_inferred(installer, monkeypatch):
    r = imported(installer, monkeypatch)
    nodes = r.lab["nodes"]
    server_peers = [p["peer"] for w in nodes["server"]["wireguard"].values() for p in w["peers"]]
    clients = [n for n, d in nodes.items() if n != "server" and d["description"].startswith("from ")]
    assert len(clients) == len(INSTALLERS[installer]) - 1
    assert server_peers == clients
    for c in clients:
        (w,) = nodes[c]["wireguard"].values()
        assert [p["peer"] for p in w["peers"]] == ["server"]
        assert {"src": c, "dst": "web", **({} if installer in IPV4_ONLY else {"family": 4})} in r.lab["checks"]
    nat = [f for f in r.findings if "inferred `" in f]
    assert len(nat) == NAT_OUTSIDE_THE_FILE.get(installer, 0)
    assert len(r.findings) == len(nat)            # the installers' files fit together
    assert nodes["internet"]["description"].startswith("inferred")


# --- files that do not fit together ------------------------------------------------------------

def keypair(seed: int) -> tuple[str, str]:
    import base64
    raw = bytearray([seed] * 32)
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode(), public_of(bytes(raw))


S, A, B, X = keypair(1), keypair(2), keypair(3), keypair(4)


def server(*peers: str, port: int = 51820) -> str:
    return f"[Interface]\nAddress = 10.9.0.1/24\nListenPort = {port}\nPrivateKey = {S[0]}\n" + "".join(peers)


def peer(pub: str, allowed: str, extra: str = "") -> str:
    return f"\n[Peer]\nPublicKey = {pub}\nAllowedIPs = {allowed}\n{extra}"


def client(me, address: str, to: str, endpoint: str = "198.51.100.9:51820", extra: str = "") -> str:
    return f"[Interface]\nAddress = {address}\nPrivateKey = {me[0]}\n" + peer(to, "10.9.0.0/24", f"Endpoint = {endpoint}\n{extra}")


def run(tmp_path, **files: str):
    for name, text in files.items():
        (tmp_path / f"{name}.conf").write_text(text)
    return import_files([(n, tmp_path / f"{n}.conf") for n in files], "mismatch")


def test_unknown_keys_on_either_side_are_findings(tmp_path):
    carol = f"\n# carol\n[Peer]\nPublicKey = {X[1]}\nAllowedIPs = 10.9.0.4/32\n"
    r = run(tmp_path, hub=server(peer(A[1], "10.9.0.2/32"), carol),
            alice=client(A, "10.9.0.2/24", S[1]), bob=client(B, "10.9.0.3/24", X[1]))
    assert any(f.startswith(f"{tmp_path}/hub.conf:12: hub's peer carol (PublicKey {X[1][:8]}…) is no file's key")
               for f in r.findings)
    assert any(f"bob.conf:6: bob's peer with PublicKey {X[1][:8]}… is no file's key" in f for f in r.findings)
    assert [p["peer"] for p in r.lab["nodes"]["hub"]["wireguard"]["hub"]["peers"]] == ["alice"]
    assert "peers" not in r.lab["nodes"]["bob"]["wireguard"]["bob"] or not r.lab["nodes"]["bob"]["wireguard"]["bob"]["peers"]
    parse_lab(r.lab, "x")


def test_one_sided_peer_psk_port_and_allowed_ips_are_findings(tmp_path):
    psk = "A" * 43 + "="
    r = run(tmp_path, hub=server(peer(A[1], "10.9.0.2/32", f"PresharedKey = {psk}\n"), peer(B[1], "10.9.0.30/32")),
            alice=client(A, "10.9.0.2/24", S[1], "vpn.example.net:51821", f"PresharedKey = {'B' * 42}A=\n"),
            carol=client(X, "10.9.0.4/24", S[1]))
    text = "\n".join(r.findings)
    assert "alice and hub have different PresharedKeys for each other" in text
    assert "alice dials hub at port 51821, but hub listens on 51820: no handshake" in text
    assert "carol lists hub, but hub's file has no peer for carol: hub drops carol's handshakes" in text
    assert psk not in text and psk not in r.text()
    # faithful to the files: alice's endpoint stays on the wrong port; its name means hub, never looked up
    (alice_peer,) = r.lab["nodes"]["alice"]["wireguard"]["alice"]["peers"]
    hub_address = r.lab["nodes"]["hub"]["addresses"]["eth0"]
    assert alice_peer["endpoint"] == f"{hub_address.split('/')[0]}:51821"
    assert any("vpn.example.net is hub" in n for n in r.notes)
    checks = r.lab.get("checks", [])
    assert {"src": "carol", "dst": "10.9.0.1"} not in checks and {"src": "alice", "dst": "10.9.0.1"} in checks


def test_allowed_ips_that_leave_out_the_peer(tmp_path):
    r = run(tmp_path, hub=server(peer(A[1], "10.9.0.20/32")), alice=client(A, "10.9.0.2/24", S[1]))
    assert any("hub's AllowedIPs for alice leave out alice's address 10.9.0.2" in f for f in r.findings)
    assert {"src": "alice", "dst": "10.9.0.1"} not in r.lab.get("checks", [])


def test_one_key_in_two_files_and_bad_names_build_nothing(tmp_path):
    (tmp_path / "a.conf").write_text(server())
    (tmp_path / "b.conf").write_text(server())
    with pytest.raises(LabFileError) as info:
        import_files([("Hub", tmp_path / "a.conf"), ("x", tmp_path / "b.conf")], "Bad-Name")
    assert info.value.details == [
        "`Bad-Name` is not a lab name (lower-case letters and digits, at most 12 characters)",
        f"{tmp_path}/a.conf: `Hub` is not a node name (lower-case letters, digits and '-', at most 14 characters)",
        f"{tmp_path}/b.conf:4: has the same PrivateKey as {tmp_path}/a.conf: two files, one machine's key"]


def test_a_rule_for_wg0_in_a_file_wg_quick_names_otherwise(tmp_path):
    r = run(tmp_path, office=server("PostUp = iptables -A FORWARD -i wg0 -j ACCEPT\n", peer(A[1], "10.9.0.2/32")),
            alice=client(A, "10.9.0.2/24", S[1]))
    assert any(f.endswith("names wg0, but wg-quick names this interface office (after the file): the rule "
                          "matches nothing") for f in r.findings)


@pytest.mark.parametrize("stem, name", [("wg0-client-alice", "client-alice"), ("Laptop_Home", "laptop-home"),
                                        ("0day", "n0day"), ("wg0", "wg0")])
def test_node_names_from_file_names(stem, name):
    assert node_name(stem, set()) == name
    assert node_name(stem, {name}) != name


def test_inferred_networks_avoid_every_network_the_files_use(tmp_path):
    wide = "10.9.0.2/32, 192.168.0.0/16, 172.16.0.0/12, 100.64.0.0/11"
    r = run(tmp_path, hub=server(peer(A[1], wide)), alice=client(A, "10.9.0.2/24", S[1]))
    import ipaddress
    used = [ipaddress.ip_network(n) for n in ("10.9.0.0/24", "192.168.0.0/16", "172.16.0.0/12", "100.64.0.0/11")]
    for name, d in r.lab["nodes"].items():
        if not d["description"].startswith("inferred") and name != "alice":
            continue
        for cidrs in d.get("addresses", {}).values():
            for c in [cidrs] if isinstance(cidrs, str) else cidrs:
                assert not any(ipaddress.ip_interface(c).network.overlaps(u) for u in used), (name, c)
    parse_lab(r.lab, "x")
