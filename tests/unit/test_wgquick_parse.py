"""Reading wg-quick files (wgtrace/wgquick/parse.py): keys as wg-quick and wg read them, and bad
files with one sentence per problem, all of them at once, with file and line.

Golden files: every ``tests/data/wgquick/bad/NAME.conf`` is a broken file and ``NAME.expected``
holds what the import says of it (the message, then one line per problem). Rewrite them after a
deliberate change of the texts with ``WGTRACE_UPDATE_GOLDEN=1 python3 -m pytest tests/unit`` and
review the diff.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from wgtrace.errors import ExitStatus, LabFileError
from wgtrace.wgquick import import_files
from wgtrace.wgquick.keys import public_of
from wgtrace.wgquick.parse import MAX_BYTES, interface_name, parse_bytes, read_file

DATA = Path(__file__).resolve().parents[1] / "data" / "wgquick"
BAD = sorted((DATA / "bad").glob("*.conf"))
UPDATE = os.environ.get("WGTRACE_UPDATE_GOLDEN") == "1"


def key(seed: int) -> tuple[str, str]:
    raw = bytearray(bytes([seed]) * 32)
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode(), public_of(bytes(raw))


PRIV, PUB = key(7)
PEER_PRIV, PEER_PUB = key(9)


def problems(pairs) -> list[str]:
    with pytest.raises(LabFileError) as info:
        import_files(pairs)
    assert info.value.status == ExitStatus.LAB_FILE
    return [info.value.message, *info.value.details]


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_file_sentences(path: Path, monkeypatch):
    monkeypatch.chdir(path.parent)
    got = "\n".join(problems([(None, Path(path.name))])) + "\n"
    golden = path.with_suffix(".expected")
    if UPDATE:
        golden.write_text(got)
    assert got == golden.read_text()
    for line in got.splitlines()[1:]:
        assert line.startswith(path.name + ":"), line


def test_every_bad_case_has_a_golden_file():
    assert {p.stem for p in (DATA / "bad").glob("*.expected")} == {p.stem for p in BAD}
    assert len(BAD) >= 7


def test_problems_of_several_files_come_together(monkeypatch):
    monkeypatch.chdir(DATA / "bad")
    got = problems([(None, Path("two-peers.conf")), (None, Path("values.conf")), (None, Path("missing.conf"))])
    assert got[0].startswith("13 problem(s)")
    assert {line.split(":")[0] for line in got[1:]} == {"two-peers.conf", "values.conf", "missing.conf"}


def test_no_key_value_in_any_sentence():
    secrets = set()
    for p in BAD:
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            if "Key" in line and "=" in line:
                secrets.add(line.split("=", 1)[1].strip())
        text = "\n".join(problems([(None, p)]))
        assert not any(s and s in text for s in secrets), p.name


def test_too_big_nul_and_not_utf8(tmp_path):
    big = tmp_path / "big.conf"
    big.write_bytes(b"#" * (MAX_BYTES + 1))
    nul = tmp_path / "nul.conf"
    nul.write_bytes(b"[Interface]\nAddress = 10.0.0.1/24\n\x00\x01\x02")
    latin = tmp_path / "latin.conf"
    latin.write_bytes(b"[Interface]\n# caf\xe9\nAddress = 10.0.0.1/24\n")
    got = problems([(None, big), (None, nul), (None, latin)])
    assert got[1] == f"{big}: {MAX_BYTES + 1} bytes; a wg-quick file may be at most {MAX_BYTES} bytes"
    assert got[2] == f"{nul}:3: a NUL byte at byte 34: this is not a text file"
    assert got[3] == f"{latin}:2: byte 17 is not UTF-8 text: this is not a text file"


def test_keys_as_wg_quick_reads_them():
    text = f"""[interface]   # wg-quick and wg compare names without case
privatekey = {PRIV}
ADDRESS = 10.0.0.2 ,fd00::2    # several, either separator, no prefix: one address each
Address = 10.1.0.2/24
dns = 1.1.1.1, example.com
ListenPort = 51000
ListenPort = 51001
PostUp = iptables -A FORWARD -i %i -j ACCEPT # bash sees this comment itself
SaveConfig = True
Table = 1234\r
[PEER]
# bob
PublicKey = {PEER_PUB}
AllowedIPs = 10.0.0.0/24,fd00::/64
AllowedIPs = 10.9.0.1/24
Endpoint = [2001:db8::1]:51820
PersistentKeepalive = off
"""
    f, errs = parse_bytes(text.encode(), "client.conf")
    assert errs == []
    i = f.interface
    assert i.public_key == PUB and not hasattr(i, "private_key")
    assert [a for a, _ in i.addresses] == ["10.0.0.2/32", "fd00::2/128", "10.1.0.2/24"]
    assert (i.dns, i.dns_search) == (["1.1.1.1"], ["example.com"])
    assert i.listen_port == 51001 and i.save_config and i.table == "1234"
    assert [(h.phase, h.text, h.line) for h in i.hooks] == [
        ("PostUp", "iptables -A FORWARD -i %i -j ACCEPT # bash sees this comment itself", 8)]
    p = f.peers[0]
    assert (p.label, p.public_key, p.endpoint, p.keepalive) == ("bob", PEER_PUB, ("2001:db8::1", 51820), None)
    assert [n for n, _ in p.allowed_ips] == ["10.0.0.0/24", "fd00::/64", "10.9.0.0/24"]
    notes = [s.text() for s in f.notes]
    assert "client.conf:7: ListenPort is given again (first on line 6): the last one counts" in notes
    assert any(n.startswith("client.conf:15: AllowedIPs 10.9.0.0/24 was written with host bits") for n in notes)


@pytest.mark.parametrize("comment, label", [
    ("### Client alice", "alice"), ("# BEGIN_PEER alice", "alice"), ("### begin alice ###", "alice"),
    ("# Client: alice (3)", "alice"), ("# alice", "alice"), ("", "")])
def test_peer_names_installers_write(comment, label):
    f, _ = parse_bytes(f"[Interface]\nPrivateKey = {PRIV}\n{comment}\n[Peer]\nPublicKey = {PEER_PUB}\n".encode(), "x.conf")
    assert f.peers[0].label == label


@pytest.mark.parametrize("name, iface", [("wg0.conf", "wg0"), ("/etc/wireguard/office.conf", "office"),
                                         ("wg0-client-alice.conf", "wg0"), ("0wg.conf", "wg0"),
                                         ("home-vpn.conf", "home-vpn")])
def test_interface_named_as_wg_quick_names_it(name, iface):
    assert interface_name(name)[0] == iface


def test_world_readable_file_is_read_with_wg_quicks_warning(tmp_path):
    p = tmp_path / "wg0.conf"
    p.write_text(f"[Interface]\nPrivateKey = {PRIV}\nAddress = 10.0.0.1/24\n")
    tmp_path.chmod(0o755)
    p.chmod(0o644)
    f, errs, warnings = read_file(p)
    assert f is not None and errs == []
    assert [w.text() for w in warnings][0].startswith(f"Warning: `{p.resolve()}' is world accessible")
    p.chmod(0o600)
    assert read_file(p)[2] == []


def test_a_pipe_is_read_with_the_same_bound(tmp_path):
    import threading
    fifo = tmp_path / "wg0.conf"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(f"[Interface]\nPrivateKey = {PRIV}\n".encode(),))
    writer.start()
    f, errs, warnings = read_file(fifo)
    writer.join()
    assert (f.iface, f.interface.public_key, errs, warnings) == ("wg0", PUB, [], [])
    assert problems([(None, tmp_path)])[1] == f"{tmp_path}: a directory, not a file"
