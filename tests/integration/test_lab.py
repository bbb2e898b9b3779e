"""The seed lab, really built: reachability, WireGuard across NAT, the command line.

Every lab here has a name of its own (see conftest.py) and is always taken down again.
Commands that choose a lab always name it (``--lab``), because other labs may be up.
"""
from __future__ import annotations

import json
import re
import socket

import pytest

from wgtrace.errors import ExitStatus
from wgtrace.model.labfile import load_lab
from wgtrace.lab.runtime import lab_dir, load_state
from wgtrace.nodes.wgstate import parse_dump

pytestmark = pytest.mark.lab

SEED = load_lab("seed")
NODES = list(SEED.nodes)
TARGET = "10.10.13.61"
FINAL = len(SEED.stages) - 1


def ping(lab, src: str, dst: str) -> bool:
    return lab.node(src).run(["ping", "-c1", "-W2", dst], timeout=10).returncode == 0


def wg_dump(lab, node: str):
    r = lab.node(node).run(["wg", "show", "all", "dump"], timeout=10)
    assert r.returncode == 0, r.stderr
    return parse_dump(r.stdout)


def one_line_error(r) -> str:
    """stderr of a refused command: exactly one line, no traceback."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("wgtrace: ")
    return lines[0]


# --- the final stage ---------------------------------------------------------------------------

def test_final_stage_is_up(seed_lab):
    st = load_state(seed_lab.name)
    assert st.complete
    assert (st.stage, st.stage_name) == (FINAL, "complete")
    assert st.nodes == NODES
    assert sorted(p.name for p in lab_dir(seed_lab.name).iterdir() if p.is_dir()) == sorted(NODES)
    assert len(seed_lab.netns_inodes()) == len(NODES)
    assert set(st.keys) == {"bcc", "home", "company"}


def test_home_pings_target(seed_lab):
    assert ping(seed_lab, "home", TARGET)


def test_target_ssh_port_answers_from_home(seed_lab):
    with seed_lab.node("home").inside():
        s = socket.create_connection((TARGET, 22), timeout=5)
    with s:
        s.settimeout(5)
        assert s.recv(64).startswith(b"SSH-2.0-")


def test_bcc_sees_home_and_company_behind_their_nat(seed_lab):
    keys = seed_lab.state.keys
    [wg0] = wg_dump(seed_lab, "bcc")
    assert wg0.name == "wg0"
    assert wg0.public_key == keys["bcc"]
    assert wg0.listen_port == 38371
    peers = {p.public_key: p for p in wg0.peers}
    assert set(peers) == {keys["home"], keys["company"]}
    for node, public_ip in (("home", "198.51.100.14"), ("company", "192.0.2.117")):
        p = peers[keys[node]]
        m = re.fullmatch(re.escape(public_ip) + r":(\d+)", p.endpoint or "")
        assert m, f"{node}'s endpoint on bcc is {p.endpoint!r}, not {public_ip}:PORT"
        assert 0 < int(m.group(1)) < 65536
        assert p.latest_handshake > 0


def test_cli_exec_wg_show_on_bcc(seed_lab, cli):
    r = cli("lab", "exec", "--lab", seed_lab.name, "bcc", "--", "wg", "show")
    assert r.returncode == 0, r.stderr
    assert f"public key: {seed_lab.state.keys['bcc']}" in r.stdout
    on_disk = (seed_lab.node("bcc").home_dir / "public").read_text().strip()
    assert on_disk == seed_lab.state.keys["bcc"]


def test_cli_exec_passes_the_exit_code_through(seed_lab, cli):
    r = cli("lab", "exec", "--lab", seed_lab.name, "bcc", "--", "sh", "-c", "exit 7")
    assert r.returncode == 7


def test_cli_exec_unknown_node(seed_lab, cli):
    r = cli("lab", "exec", "--lab", seed_lab.name, "nosuch", "--", "true")
    assert r.returncode == ExitStatus.LAB_FILE
    line = one_line_error(r)
    assert "'nosuch'" in line and seed_lab.name in line


def test_cli_up_unknown_stage_builds_nothing(lab_factory, cli, leftovers):
    name = lab_factory.fresh_name()
    for stage in ("nosuch", "12", "[/]"):         # "[/]": no markup trouble in the message
        r = cli("lab", "up", "--name", name, "--stage", stage)
        assert r.returncode == ExitStatus.LAB_FILE, r.stderr
        line = one_line_error(r)
        assert f"no stage '{stage}'" in line
        assert leftovers(name) == []


def test_cli_up_refuses_a_lab_that_is_up_and_leaves_it_alone(seed_lab, cli):
    before = seed_lab.netns_inodes()
    r = cli("lab", "up", "--name", seed_lab.name)
    assert r.returncode == ExitStatus.LAB_STATE
    line = one_line_error(r)
    assert "already up" in line and f"lab down {seed_lab.name}" in line
    st = load_state(seed_lab.name)
    assert st.complete and st.pid == seed_lab.state.pid
    assert seed_lab.netns_inodes() == before
    assert ping(seed_lab, "home", TARGET)


def test_cli_status_json(seed_lab, cli):
    r = cli("lab", "status", "--lab", seed_lab.name, "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert (st["lab"], st["stage"], st["stage_name"], st["complete"]) == (seed_lab.name, FINAL, "complete", True)
    nodes = {n["name"]: n for n in st["nodes"]}
    assert list(nodes) == NODES
    assert [a for i in nodes["target"]["ifaces"] for a in i["addresses"]] == ["10.10.13.61/24"]
    for node, peers in (("bcc", {"home", "company"}), ("home", {"bcc"}), ("company", {"bcc"})):
        [wg0] = nodes[node]["wireguard"]
        assert {p["node"] for p in wg0["peers"]} == peers
        for p in wg0["peers"]:
            assert p["handshake_age_s"] is not None, f"{node} -> {p['node']}: no handshake"
            assert 0 <= p["handshake_age_s"] < 120
    assert nodes["target"]["wireguard"] == []


# --- other stages, other labs --------------------------------------------------------------------

def test_stage_zero_has_no_vpn(lab_factory):
    lab = lab_factory.up(stage=0)
    assert (lab.state.stage, lab.state.stage_name, lab.state.complete) == (0, "base", True)
    for node in ("bcc", "home", "company"):
        assert wg_dump(lab, node) == []
    assert ping(lab, "home", "203.0.113.13")        # the internet works: through NAT to bcc
    assert ping(lab, "company", "203.0.113.13")
    assert not ping(lab, "home", TARGET)            # but the company LAN is out of reach


def test_two_labs_side_by_side(seed_lab, lab_factory):
    other = lab_factory.up()
    assert other.name != seed_lab.name
    assert not other.netns_inodes() & seed_lab.netns_inodes()
    assert other.state.keys["bcc"] != seed_lab.state.keys["bcc"]
    assert ping(seed_lab, "home", TARGET)
    assert ping(other, "home", TARGET)
    [wg0] = wg_dump(other, "bcc")
    assert wg0.public_key == other.state.keys["bcc"]


@pytest.mark.parametrize("stage", range(len(SEED.stages)),
                         ids=[f"{i}-{s.name}" for i, s in enumerate(SEED.stages)])
def test_every_stage_builds(lab_factory, stage):
    lab = lab_factory.up(stage=stage)
    st = load_state(lab.name)
    assert (st.stage, st.stage_name, st.complete) == (stage, SEED.stages[stage].name, True)
    dump = wg_dump(lab, "bcc")
    assert len(dump) == (1 if stage >= 1 else 0)
    if dump:
        assert len(dump[0].peers) == (2 if stage >= 2 else 0)


def test_export_wg_quick_files_that_wg_quick_reads(seed_lab, cli, tmp_path):
    import shutil
    import subprocess
    r = cli("lab", "export", str(tmp_path), "--lab", seed_lab.name)
    assert r.returncode == 0, r.stderr
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("*/*.conf"))
    assert files == ["bcc/wg0.conf", "company/wg0.conf", "home/wg0.conf"]       # wg-quick names them wg0
    home = (tmp_path / "home" / "wg0.conf").read_text()
    assert "AllowedIPs = 192.168.2.0/24, 10.10.13.0/24" in home and "Endpoint = 203.0.113.13:38371" in home
    assert seed_lab.state.keys["bcc"] in home
    assert "ListenPort = 52796" in home and "PostUp = sysctl -w net.ipv4.ip_forward=0" in home   # stage 0's items too
    if shutil.which("wg-quick"):
        for f in tmp_path.glob("*/*.conf"):
            out = subprocess.run(["wg-quick", "strip", str(f)], capture_output=True, text=True)
            assert out.returncode == 0 and "PrivateKey" in out.stdout, out.stderr
