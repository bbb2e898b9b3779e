"""The lab file loader's error texts (golden files), stages, stage numbers and wg dumps.

No root, no kernel: everything here is plain data.

Golden files: every ``labfiles/NAME.toml`` is a malformed lab file and ``labfiles/NAME.expected``
holds the exact lines the loader reports for it (the error's message, then one line per
problem), with the file's path written as ``<labfile>``. After a deliberate change of the
texts, rewrite them with ``WGTRACE_UPDATE_GOLDEN=1 python3 -m pytest tests/unit`` and review
the diff.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wgtrace.errors import ExitStatus, LabFileError, UsageError
from wgtrace.model.labfile import available_labs, load_lab, parse_lab
from wgtrace.model.commands import endpoint_of, stage_commands
from wgtrace.nodes.wgstate import parse_dump

LABFILES = Path(__file__).resolve().parent / "labfiles"
GOLDEN = sorted(LABFILES.glob("*.toml"))
PLACEHOLDER = "<labfile>"
UPDATE = os.environ.get("WGTRACE_UPDATE_GOLDEN") == "1"
REPO = Path(__file__).resolve().parents[2]


def error_text(path: Path) -> str:
    """What the loader reports for ``path``: message and details, path replaced."""
    with pytest.raises(LabFileError) as info:
        load_lab(str(path))
    e = info.value
    assert e.status == ExitStatus.LAB_FILE
    lines = [e.message, *e.details]
    return "\n".join(lines).replace(str(path), PLACEHOLDER) + "\n"


# --- golden error texts ------------------------------------------------------------------------

def test_golden_files_are_paired():
    assert len(GOLDEN) >= 10
    expected = {p.stem for p in LABFILES.glob("*.expected")}
    assert expected == {p.stem for p in GOLDEN}


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_error_text(path: Path):
    got = error_text(path)
    golden = path.with_suffix(".expected")
    if UPDATE:
        golden.write_text(got)
    assert got == golden.read_text()
    assert str(path) not in got.replace(PLACEHOLDER, "")


MINI = """
name = "mini"

[[stages]]
name = "vpn"
title = "WireGuard between a and b"

[nodes.a]
addresses = { eth0 = "10.0.0.1/24" }

[nodes.a.wireguard.wg0]
address = "192.168.9.1/24"
listen_port = 51820
stage = "vpn"
peers = [{ peer = "b", allowed_ips = ["192.168.9.2/32"], endpoint = "b:eth0", stage = "vpn" }]

[nodes.b]
addresses = { eth0 = "10.0.0.2/24" }

[nodes.b.wireguard.wg0]
address = "192.168.9.2/24"
listen_port = 51821
stage = "vpn"
peers = [{ peer = "a", allowed_ips = ["192.168.9.1/32"], endpoint = "a:eth0", stage = "vpn" }]

[[links]]
endpoints = ["a:eth0", "b:eth0"]
"""


def test_the_small_lab_the_golden_files_start_from_is_valid(tmp_path: Path):
    """Each golden file is this lab plus the mistakes it is about, so the mistakes are all
    that is reported."""
    f = tmp_path / "mini.toml"
    f.write_text(MINI)
    lab = load_lab(str(f))
    assert lab.name == "mini"
    assert [s.name for s in lab.stages] == ["base", "vpn"]
    assert lab.path == str(f)


def test_unknown_lab_name_lists_the_known_labs():
    with pytest.raises(LabFileError) as info:
        load_lab("nosuchlab")
    known = available_labs()
    assert "seed" in known
    assert info.value.message == f"unknown lab 'nosuchlab' (known labs: {', '.join(known)})"
    assert info.value.status == ExitStatus.LAB_FILE


def test_cli_prints_the_errors_and_exits_6(tmp_path: Path):
    """The command line shows the same lines (message after 'wgtrace:', problems indented)."""
    src = LABFILES / "several-errors.toml"
    f = tmp_path / "bad[1].toml"          # brackets in a path must not be taken for markup
    f.write_text(src.read_text())
    r = subprocess.run([sys.executable, "-m", "wgtrace", "lab", "stages", str(f)], cwd=REPO,
                       capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == ExitStatus.LAB_FILE, r.stderr
    assert "Traceback" not in r.stderr
    first, *rest = src.with_suffix(".expected").read_text().splitlines()
    want = [f"wgtrace: {first}", *(f"  {line}" for line in rest)]
    assert r.stderr.replace(str(f), PLACEHOLDER).splitlines() == want
    assert r.stdout == ""


# --- the seed lab and renaming -----------------------------------------------------------------

def test_seed_loads():
    lab = load_lab("seed")
    assert lab.name == "seed"
    assert list(lab.nodes) == ["internet", "bcc", "home-router", "home", "company-router",
                               "company", "target"]
    assert (lab.probe_src, lab.probe_dst) == ("home", "target")
    assert len(lab.stages) == 12


def test_rename_runs_the_file_under_another_name():
    lab = load_lab("seed", rename="t12")
    assert lab.name == "t12"
    assert lab.nodes == load_lab("seed").nodes


@pytest.mark.parametrize("name", ["has-dash", "Upper", "1abc", "abcdefghijklm", ""])
def test_rename_checks_the_name(name: str):
    with pytest.raises(LabFileError) as info:
        load_lab("seed", rename=name)
    assert any(d.endswith(": name: required: lower-case letters and digits, at most 12 characters")
               for d in info.value.details)


def test_parse_lab_of_data_reports_the_given_path():
    with pytest.raises(LabFileError) as info:
        parse_lab({"name": "x", "nodes": {}}, "somewhere.toml")
    assert info.value.details == ["somewhere.toml: nodes: required: at least one [nodes.NAME] table"]


def test_lab_down_refuses_a_name_that_is_a_path():
    """teardown turns the name into /run/wgtrace/<name> and removes it: '/' or '..' must be
    refused before anything is touched (the path used here does not exist anyway)."""
    from wgtrace.lab.teardown import lab_down
    with pytest.raises(UsageError):
        lab_down("../wgtrace-no-such-dir")


# --- Lab.stage_index -----------------------------------------------------------------------------

@pytest.mark.parametrize("given, index", [
    ("0", 0), (0, 0), ("base", 0),
    ("1", 1), ("wg0", 1),
    ("2", 2), (2, 2), ("peers", 2),
    (" 3 ", 3), ("home-route", 3),
    ("11", 11), (11, 11), ("complete", 11),
    ("12", None), (12, None), ("99", None),
    ("-1", None), (-1, None), ("", None), ("nosuch", None), ("Peers", None),
], ids=repr)
def test_stage_index(given, index):
    assert load_lab("seed").stage_index(given) == index


# --- stages.stage_commands -------------------------------------------------------------------------

KEYS = {"bcc": "BCCKEY=", "home": "HOMEKEY=", "company": "COMPANYKEY="}


def test_stage_peers_commands_with_keys():
    lab = load_lab("seed")
    assert [(c.node, c.text) for c in stage_commands(lab, lab.stage_index("peers"), KEYS)] == [
        ("bcc", "wg set wg0 peer HOMEKEY= allowed-ips 192.168.2.2/32 persistent-keepalive 15"),
        ("bcc", "wg set wg0 peer COMPANYKEY= allowed-ips 192.168.2.3/32,10.10.13.0/24 "
                       "persistent-keepalive 15"),
        ("home", "wg set wg0 peer BCCKEY= allowed-ips 192.168.2.0/24 "
                        "endpoint 203.0.113.13:38371 persistent-keepalive 15"),
        ("company", "wg set wg0 peer BCCKEY= allowed-ips 192.168.2.0/24 "
                           "endpoint 203.0.113.13:38371 persistent-keepalive 15"),
    ]


def test_stage_peers_commands_without_keys_use_placeholders():
    lab = load_lab("seed")
    texts = [c.text for c in stage_commands(lab, 2)]
    assert [t.split()[4] for t in texts] == ["<home-public-key>", "<company-public-key>",
                                             "<bcc-public-key>", "<bcc-public-key>"]


def test_stage_wg0_commands():
    lab = load_lab("seed")
    cmds = stage_commands(lab, lab.stage_index("wg0"), KEYS)
    assert [c.node for c in cmds] == ["bcc"] * 4 + ["home"] * 4 + ["company"] * 4
    assert [c.text for c in cmds if c.node == "bcc"] == [
        "ip link add dev wg0 type wireguard",
        "ip addr add 192.168.2.1/24 dev wg0",
        "wg set wg0 private-key ./private listen-port 38371",
        "ip link set wg0 up",
    ]


def test_stage_home_allowed_ips_widens_the_peer():
    lab = load_lab("seed")
    assert [(c.node, c.text) for c in stage_commands(lab, lab.stage_index("home-allowed-ips"), KEYS)] == [
        ("home", "wg set wg0 peer BCCKEY= allowed-ips 192.168.2.0/24,10.10.13.0/24"),
    ]


def test_stage_complete_stops_redirects_on_bcc():
    lab = load_lab("seed")
    assert [(c.node, c.text) for c in stage_commands(lab, 11, KEYS)] == [
        ("bcc", "sysctl -w net.ipv4.conf.all.send_redirects=0"),
        ("bcc", "sysctl -w net.ipv4.conf.wg0.send_redirects=0"),
    ]


def test_stage_base_has_routes_policies_and_nat_but_no_vpn():
    lab = load_lab("seed")
    by_node: dict[str, list[str]] = {}
    for c in stage_commands(lab, 0, KEYS):
        by_node.setdefault(c.node, []).append(c.text)
    assert by_node["bcc"] == ["sysctl -w net.ipv4.ip_forward=0",
                              "ip route add default via 203.0.113.1",
                              "iptables -P FORWARD DROP"]
    assert by_node["home-router"] == ["sysctl -w net.ipv4.ip_forward=1",
                                      "ip route add default via 198.51.100.1",
                                      "iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully"]
    assert not any(t.startswith("wg ") or "wg0" in t for ts in by_node.values() for t in ts)


def test_every_stage_adds_something_and_only_on_seed_nodes():
    lab = load_lab("seed")
    for i in range(len(lab.stages)):
        cmds = stage_commands(lab, i, KEYS)
        assert cmds, f"stage {i} {lab.stages[i].name} has no commands"
        assert {c.node for c in cmds} <= set(lab.nodes)


def test_endpoint_of_resolves_node_and_iface():
    lab = load_lab("seed")
    assert endpoint_of(lab, "bcc:eth0") == "203.0.113.13:38371"
    assert endpoint_of(lab, "203.0.113.9:51820") == "203.0.113.9:51820"


# --- wgstate.parse_dump ----------------------------------------------------------------------------

DUMP = (
    "wg0\tPRIVbcc=\tPUBbcc=\t38371\toff\n"
    "wg0\tPUBhome=\t(none)\t198.51.100.14:64531\t192.168.2.2/32\t1795635798\t180\t124\t15\n"
    "wg0\tPUBcompany=\t(none)\t192.0.2.117:23405\t192.168.2.3/32,10.10.13.0/24\t1795635799\t1480\t2124\t15\n"
    "wg1\tPRIV1=\tPUB1=\t51820\t0x1234\n"
    "wg1\tPUBx=\tPSK=\t(none)\t(none)\t0\t0\t0\toff\n"
)


def test_parse_dump_interfaces_and_peers():
    wg0, wg1 = parse_dump(DUMP)
    assert (wg0.name, wg0.public_key, wg0.listen_port) == ("wg0", "PUBbcc=", 38371)
    assert [p.public_key for p in wg0.peers] == ["PUBhome=", "PUBcompany="]
    home, company = wg0.peers
    assert home.endpoint == "198.51.100.14:64531"
    assert home.allowed_ips == ["192.168.2.2/32"]
    assert (home.latest_handshake, home.rx, home.tx, home.keepalive) == (1795635798, 180, 124, 15)
    assert company.allowed_ips == ["192.168.2.3/32", "10.10.13.0/24"]
    assert (company.rx, company.tx) == (1480, 2124)


def test_parse_dump_none_off_and_never():
    _, wg1 = parse_dump(DUMP)
    assert (wg1.name, wg1.listen_port) == ("wg1", 51820)
    [p] = wg1.peers
    assert p.endpoint is None
    assert p.allowed_ips == []
    assert p.latest_handshake == 0
    assert p.keepalive is None


def test_parse_dump_empty_and_noise():
    assert parse_dump("") == []
    # a peer line before its interface line, and lines of other shapes, are ignored
    text = "wg0\tPUBhome=\t(none)\t(none)\t(none)\t0\t0\t0\toff\nnot a dump line\n\n"
    assert parse_dump(text) == []
    [w] = parse_dump("wg0\tPRIV=\tPUB=\t51820\toff\n")
    assert w.peers == []


# --- the labs of the shapes people deploy ------------------------------------------------------

def test_checks_may_name_an_address_of_a_node(tmp_path: Path):
    """A VPN client's first address is its LAN one: a check names its tunnel address instead.
    An address no node has is refused like an unknown node, and so is one of src itself."""
    lab = load_lab("roadwarrior")
    assert ("nas", "10.8.0.2") in {(c.src, c.dst) for c in lab.checks}
    f = tmp_path / "mini.toml"
    f.write_text(MINI.replace('name = "mini"\n', 'name = "mini"\nchecks = [{ src = "a", dst = "10.9.9.9" }, '
                              '{ src = "a", dst = "192.168.9.2" }]\n'))
    with pytest.raises(LabFileError) as info:
        load_lab(str(f))
    assert any(d.endswith("checks[0].dst: unknown node '10.9.9.9'") for d in info.value.details)
    assert not any("checks[1]" in d for d in info.value.details)       # b's tunnel address: fine


@pytest.mark.parametrize("spokes", [1, 2, 3, 200])
def test_hub_is_valid_from_one_spoke_to_two_hundred(spokes: int):
    lab = load_lab("hub", params={"spokes": str(spokes)})
    assert len(lab.nodes) == 2 + 2 * spokes
    addrs = [c for n in lab.nodes.values() for _, c in n.all_cidrs()]
    assert len(addrs) == len({a.split("/")[0] for a in addrs})        # every address once
    ring = [(c.src, c.dst) for c in lab.checks if c.dst.startswith("h")]
    assert len(ring) == (spokes if spokes > 1 else 0)
    assert lab.probe_dst in lab.nodes and lab.probe_dst != lab.probe_src
