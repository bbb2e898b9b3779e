"""A shared lab file, a dead daemon, a crowded machine: no command runs that the user did not ask
for, no verdict on a state that is gone, one sentence and the documented exit code for ordinary
mistakes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wgtrace.errors import ExitStatus
from wgtrace.lab.inject import inject
from wgtrace.model.faults import find_fault, load_faults
from wgtrace.model.labfile import find_lab

REPO = Path(__file__).resolve().parents[2]
SEED = load_faults(str(find_lab("seed")))


# --- a lab file is data ----------------------------------------------------------------------------

@pytest.mark.parametrize("field, text", [
    ("rule", '"-t filter -A FORWARD -i wg0 -j ACCEPT; touch {marker}"'),
    ("value", '"1; touch {marker}"'),
])
def test_shell_in_a_lab_file_never_runs(cli, tmp_path, field, text):
    marker = tmp_path / "injected"
    seed = (REPO / "labs" / "seed.toml").read_text()
    if field == "rule":
        bad = seed.replace('"-t filter -A FORWARD -i wg0 -j ACCEPT"', text.format(marker=marker), 1)
    else:
        bad = seed.replace('{ key = "net.ipv4.ip_forward", value = "1" }',
                           '{ key = "net.ipv4.ip_forward", value = ' + text.format(marker=marker) + " }", 1)
    assert bad != seed
    f = tmp_path / "bad.toml"
    f.write_text(bad)
    for args in (["lab", "up", str(f), "--name", "xinj"], ["lab", "stages", str(f)]):
        r = cli(*args)
        assert r.returncode == ExitStatus.LAB_FILE, r.stderr
        assert "touch" not in r.stdout and "Traceback" not in r.stderr
    assert not marker.exists()
    assert not Path("/run/wgtrace/xinj").exists()


def test_a_huge_lab_file_is_refused_at_once_with_nothing_built(cli, tmp_path):
    f = tmp_path / "huge.toml"
    with open(f, "w") as out:
        out.write('name = "huge"\n')
        for i in range(150000):
            out.write(f'[nodes.n{i}]\naddresses = {{ eth0 = "10.{i // 65536}.{i // 256 % 256}.{i % 256}/8" }}\n')
    t = time.monotonic()
    r = cli("lab", "up", str(f), "--name", "xhuge")
    took = time.monotonic() - t
    assert r.returncode == ExitStatus.LAB_FILE and "at most" in r.stderr, r.stderr
    assert took < 5, took
    assert not Path("/run/wgtrace/xhuge").exists() and not list(Path("/run/netns").glob("wgt-xhuge-*"))


def test_a_big_lab_within_the_file_limits_is_counted_before_building(tmp_path):
    from wgtrace.model.labfile import load_lab
    f = tmp_path / "many.toml"
    f.write_text('name = "many"\n[params]\nn = 1001\n[nodes."n{i}"]\neach = { i = "1..n" }\n'
                 'addresses = { eth0 = "10.1.{i // 256}.{i % 256}/16" }\n')
    from wgtrace.errors import LabFileError
    with pytest.raises(LabFileError) as e:
        load_lab(str(f))
    assert "1001 nodes" in e.value.message and "at most 1000" in e.value.message


# --- a verdict comes from what exists now ------------------------------------------------------------

def _pid_in(lab, node: str, comm: str) -> int:
    ino = os.stat(lab.node(node).netns_path).st_ino
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}/ns/net").st_ino == ino and Path(f"/proc/{p}/comm").read_text().strip() == comm:
                    return int(p)
            except OSError:
                continue
    raise AssertionError(f"no {comm} in {node}")


def test_a_dead_wireguard_daemon_is_the_finding_and_its_fix_recreates_it(lab_factory, cli):
    lab = lab_factory.up()
    if lab.state.wg_impl != "wireguard-go":
        pytest.skip("kernel WireGuard: no daemon to kill")
    os.kill(_pid_in(lab, "bcc", "wireguard-go"), 15)      # only bcc's, by its namespace
    time.sleep(0.3)
    st = json.loads(cli("lab", "status", "--lab", lab.name, "--json").stdout)
    assert st["complete"] is False and any("bcc" in p and "wg0" in p for p in st["problems"])
    r = cli("diagnose", "home", "target", "--lab", lab.name, "--json")
    d = json.loads(r.stdout)
    assert (d["cause"], d["stop"]["node"], d["stop"]["iface"]) == ("link-down", "bcc", "wg0"), d["evidence"]
    cmds = [f["command"] for f in d["fix"]]
    assert cmds[0] == "ip link add dev wg0 type wireguard" and any(c.startswith("wg set wg0 peer") for c in cmds)
    r = cli("diagnose", "home", "target", "--lab", lab.name, "--fix", "--json")
    assert r.returncode == 0, r.stdout
    for _ in range(5):
        if cli("check", "--all", "--lab", lab.name).returncode == 0:
            break
        time.sleep(1)
    else:
        raise AssertionError("check --all stays red after the recreated interface")


def test_a_namespace_removed_by_hand_is_a_broken_lab(lab_factory, cli):
    lab = lab_factory.up("base")
    subprocess.run(["ip", "netns", "del", f"wgt-{lab.name}-target"], check=True)
    for args in (["lab", "status"], ["diagnose", "home", "target"], ["trace", "home", "target"]):
        r = cli(*args, "--lab", lab.name)
        assert r.returncode == ExitStatus.LAB_STATE, (args, r.stderr)
        assert "lab down" in r.stderr and "Traceback" not in r.stderr and "unexpected" not in r.stderr


# --- ordinary mistakes: one sentence, the documented code -------------------------------------------

def test_output_files_that_cannot_be_written(seed_lab, cli, tmp_path):
    r = cli("trace", "home", "target", "--lab", seed_lab.name, "--pcap", "/proc/wgtrace-nope/x.pcapng")
    assert r.returncode == ExitStatus.USAGE and "cannot write" in r.stderr, r.stderr
    f = tmp_path / "file"
    f.write_text("x")
    r = cli("lab", "export", str(f), "--lab", seed_lab.name)
    assert r.returncode == ExitStatus.USAGE and "not a directory" in r.stderr, r.stderr


def test_report_into_a_missing_directory(cli, tmp_path):
    env_dir = tmp_path / "state"
    env_dir.mkdir()
    (env_dir / "exercise.json").write_text(json.dumps({"kind": "exercise", "name": "exercise", "lab": "seed",
                                                        "lab_file": str(find_lab("seed"))}))
    r = subprocess.run([sys.executable, "-m", "wgtrace", "report", "--html", str(tmp_path / "no" / "r.html")],
                       cwd=REPO, capture_output=True, text=True, env={**os.environ, "WGTRACE_STATE_DIR": str(env_dir)})
    assert r.returncode == ExitStatus.USAGE and "does not exist" in r.stderr, r.stderr


# --- two diagnoses at once ------------------------------------------------------------------------

def test_two_diagnoses_at_once_count_only_their_own_probe(lab_factory):
    lab = lab_factory.up()
    inject(find_fault(SEED, "bcc-forward-rules-missing"), lab.state)
    cmd = [sys.executable, "-m", "wgtrace", "diagnose", "home", "target", "--lab", lab.name, "--json"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    for d in outs:
        assert d["cause"] == "forward-filtered"
        counts = [e["detail"] for e in d["evidence"] if e["kind"] == "iptables" and "matched" in e["detail"]]
        assert counts and all("matched 1 packet" in c for c in counts), counts


# --- smaller answers --------------------------------------------------------------------------------

def test_smaller_answers_are_right(seed_lab, cli):
    name = seed_lab.name
    d = json.loads(cli("diagnose", "company", "home", "--lab", name, "--json").stdout)
    assert d["dst_ip"] == "192.168.2.2" and d["cause"] == "reachable"     # home, where company sees it
    d = json.loads(cli("diagnose", "target", "192.168.2.2", "--lab", name, "--json").stdout)
    assert (d["cause"], d["stop"]["node"]) == ("route-missing", "target")
    assert "wg0" not in d["explanation"] and "company" in d["explanation"]
    assert [f["command"] for f in d["fix"]] == ["ip route add 192.168.2.0/24 via 10.10.13.62 dev ens192"]
    d = json.loads(cli("diagnose", "home", "10.10.13.99", "--lab", name, "--json").stdout)
    assert (d["cause"], d["stop"]["node"]) == ("neighbor-unreachable", "company"), d["evidence"]
    d = json.loads(cli("diagnose", "home", "target", "--udp", "53", "--lab", name, "--json").stdout)
    assert (d["cause"], d["stop"]["node"]) == ("port-closed", "target")
    assert cli("check", "--lang", "fr", "--lab", name).returncode == ExitStatus.USAGE
    assert cli("diagnose", "home", "target", "--lang", "fr", "--lab", name).returncode == ExitStatus.USAGE
    r = cli("lab", "stages", "--lab", name)
    assert "public-key>" not in r.stdout and seed_lab.state.keys["bcc"] in r.stdout
    assert "--lab" in cli("lab", "down", "--help").stdout
    assert "Which running lab" in cli("diagnose", "--help").stdout


def test_exercise_refuses_more_faults_than_it_can_combine(cli):
    r = cli("exercise", "--faults", "99", "--name", "xex")
    assert r.returncode == ExitStatus.USAGE and "can be combined" in r.stderr, r.stderr
    assert not Path("/run/wgtrace/xex").exists()


def test_lab_down_takes_lab_as_an_option(lab_factory, cli):
    name = lab_factory.fresh_name()
    assert cli("lab", "up", "--name", name, "--stage", "base").returncode == 0
    r = cli("lab", "down", "--lab", name)
    assert r.returncode == 0 and "removed" in r.stderr


def test_chinese_json_and_evidence_once(lab_factory, cli):
    lab = lab_factory.up()
    inject(find_fault(SEED, "company-return-rule-missing"), lab.state)
    d = json.loads(cli("diagnose", "home", "target", "--lab", lab.name, "--lang", "zh", "--json").stdout)
    assert "回包" in d["story"] and any("命中" in e["detail"] for e in d["evidence"])
    details = [(e["node"], e["kind"], e["detail"]) for e in d["evidence"]]
    assert len(details) == len(set(details))
