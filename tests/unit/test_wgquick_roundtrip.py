"""``lab export`` then ``lab import`` gives the lab back, up to keys, for every lab in labs/ (the
export writer fed with the kernel state each lab's model says its last stage has; the real
export of running labs: tests/integration/test_wgquick_lab.py). What is compared:
tests/roundtrip_support.py. Stage 0's items are in the files, and each interface keeps its name."""
from __future__ import annotations

import base64

import pytest

from roundtrip_support import differences, peers_at
from wgtrace.model.commands import endpoint_of
from wgtrace.model.labfile import available_labs, load_lab
from wgtrace.model.parse import parse_lab
from wgtrace.nodes.wgstate import WgIface, WgPeer
from wgtrace.output.wgquick import wg_quick
from wgtrace.wgquick import import_files
from wgtrace.wgquick.keys import KEY_WORD_RE, public_of


def keypair(seed: int) -> tuple[str, str]:
    raw = bytearray([seed] * 32)
    raw[0] &= 248
    raw[31] = (raw[31] & 127) | 64
    return base64.b64encode(bytes(raw)).decode(), public_of(bytes(raw))


def exported(lab, tmp_path) -> list[tuple[str, object]]:
    """DIR/NODE/IFACE.conf for every WireGuard interface, as ``lab export`` writes a running lab."""
    last = len(lab.stages) - 1
    wg_nodes = sorted(n for n in lab.nodes if lab.nodes[n].wireguard)
    keys = {n: keypair(10 + i) for i, n in enumerate(wg_nodes)}
    names = {pub: n for n, (_, pub) in keys.items()}
    upto = {None} | {s.name for s in lab.stages[1:]}
    written = []
    for n in wg_nodes:
        node = lab.nodes[n]
        for w in node.wireguard.values():
            peers = [WgPeer(keys[p.peer][1], endpoint_of(lab, p.endpoint) if p.endpoint else None,
                            list(p.allowed_ips), 0, 0, 0, p.keepalive) for p in peers_at(lab, w, last).values()]
            path = tmp_path / n / f"{w.name}.conf"
            path.parent.mkdir()
            path.write_text(wg_quick(node, WgIface(w.name, keys[n][1], w.listen_port or 40000 + len(written), peers,
                                                   w.fwmark or 0), keys[n][0], names, upto))
            written.append((n, path))
    return written


@pytest.mark.parametrize("lab_name", available_labs())
def test_export_then_import_gives_the_lab_back(lab_name, tmp_path):
    lab = load_lab(lab_name)
    files = exported(lab, tmp_path)
    r = import_files(files, "back")
    back = parse_lab(r.lab, "back")
    assert differences(lab, back) == []
    assert not KEY_WORD_RE.search(r.text())


def test_files_named_alike_name_their_nodes_after_their_directories(tmp_path):
    lab = load_lab("hub")
    files = exported(lab, tmp_path)
    r = import_files([(None, p) for _, p in files], "back")
    assert differences(lab, parse_lab(r.lab, "back")) == []


def test_stage_zero_items_are_written(tmp_path):
    lab = load_lab("roadwarrior")            # everything is at stage 0
    text = dict((n, p.read_text()) for n, p in exported(lab, tmp_path))["server"]
    assert "PostUp = sysctl -w net.ipv4.ip_forward=1" in text
    assert "PostUp = iptables -t nat -A POSTROUTING -s 10.8.0.0/24 -o eth0 -j MASQUERADE" in text
    assert "PostDown = iptables -t nat -D POSTROUTING -s 10.8.0.0/24 -o eth0 -j MASQUERADE" in text


def test_a_changed_file_does_not_come_back_as_the_lab(tmp_path):
    lab = load_lab("site2site")
    files = exported(lab, tmp_path)
    path = dict(files)["laptop"]
    path.write_text(path.read_text().replace("10.2.0.0/24", "10.2.0.0/25").replace("MASQUERADE", "ACCEPT"))
    r = import_files(files, "back")
    got = differences(lab, parse_lab(r.lab, "back"))
    assert any(d.startswith("laptop.wg1.peers:") for d in got), got
