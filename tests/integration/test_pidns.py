"""Nodes cannot touch each other's processes: each node has its own PID namespace and /proc,
so ``ps``, ``pkill`` and ``kill`` typed in a node see that node alone; taking a lab down removes
every process of its nodes, also what a student or a fix started there, and nothing else.

Processes are looked at from this machine's side by their namespaces (the inits' PID namespace
inodes are in the lab's state), never by name alone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from wgtrace.lab.inject import inject
from wgtrace.lab.runtime import load_state
from wgtrace.model.faults import find_fault, load_faults
from wgtrace.model.labfile import find_lab

pytestmark = pytest.mark.lab


def _starttime(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def pidns_of(lab, node: str) -> int:
    pid, ino = load_state(lab.name).inits[node]
    assert os.stat(f"/proc/{pid}/ns/pid").st_ino == ino, f"{node}'s init is gone"
    return ino


def in_node(lab, node: str, comm: str | None = None) -> dict[int, str]:
    """This machine's pids of the live processes in ``node``'s PID namespace -> their comm."""
    ino = pidns_of(lab, node)
    out = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat(f"/proc/{p}/ns/pid").st_ino != ino or _starttime(int(p)) is None:
                    continue
            except OSError:
                continue
            if comm is None or _comm(int(p)) == comm:
                out[int(p)] = _comm(int(p))
    return out


def wireguard_go(lab) -> dict[str, set[int]]:
    """node -> pids of its wireguard-go, for every node of the lab with WireGuard."""
    return {n: set(in_node(lab, n, "wireguard-go")) for n, m in lab.model.nodes.items() if m.wireguard}


def need_wireguard_go(lab) -> None:
    if lab.state.wg_impl != "wireguard-go":
        pytest.skip("kernel WireGuard: no daemon to kill")


# --- pkill in one node ------------------------------------------------------------------------------

def test_pkill_wireguard_go_in_one_node_stops_that_node_alone(lab_factory, cli):
    mesh = lab_factory.up(lab_file="mesh")
    need_wireguard_go(mesh)
    seed = lab_factory.up()
    before = {mesh.name: wireguard_go(mesh), seed.name: wireguard_go(seed)}
    assert all(len(p) == 1 for labs in before.values() for p in labs.values()), before

    r = cli("lab", "exec", "--lab", mesh.name, "sitea", "--", "pkill", "wireguard-go")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 5
    while wireguard_go(mesh)["sitea"] and time.monotonic() < deadline:
        time.sleep(0.05)
    after = {mesh.name: wireguard_go(mesh), seed.name: wireguard_go(seed)}
    assert after[mesh.name]["sitea"] == set()
    # every other daemon is the very process it was, in this lab and in the other
    assert {n: p for n, p in after[mesh.name].items() if n != "sitea"} == \
        {n: p for n, p in before[mesh.name].items() if n != "sitea"}
    assert after[seed.name] == before[seed.name]

    d = json.loads(cli("diagnose", "hosta", "hostc", "--lab", mesh.name, "--json").stdout)
    assert (d["cause"], d["stop"]["node"], d["stop"]["iface"]) == ("link-down", "sitea", "wg-a"), d
    st = json.loads(cli("lab", "status", "--lab", mesh.name, "--json").stdout)
    assert [p for p in st["problems"] if "wg-a" in p] and not [p for p in st["problems"] if "sitea" not in p]
    r = cli("check", "--all", "--lab", mesh.name, "--json")
    checks = json.loads(r.stdout)["checks"]
    by_site_a = [c for c in checks if {c["src"], c["dst"]} & {"hosta", "sitea"}]
    others = [c for c in checks if c not in by_site_a]
    assert by_site_a and not any(c["reachable"] for c in by_site_a), by_site_a
    assert others and all(c["reachable"] for c in others), others
    r = cli("check", "--all", "--lab", seed.name)
    assert r.returncode == 0, r.stdout


# --- what a node sees -------------------------------------------------------------------------------

def test_a_node_sees_its_own_processes_and_its_init_as_pid_1(seed_lab, cli):
    r = cli("lab", "exec", "--lab", seed_lab.name, "target", "--", "ps", "-e", "-o", "pid=,comm=")
    assert r.returncode == 0, r.stderr
    seen = {int(p): c for p, c in (line.split(None, 1) for line in r.stdout.splitlines())}
    assert seen[1] == "catatonit"
    assert sorted(seen.values()) == sorted(["catatonit", "sshd", "ps"]), seen
    # what the node shows is what this machine finds in the node's PID namespace
    assert sorted(in_node(seed_lab, "target").values()) == sorted(["catatonit", "sshd"])
    r = cli("lab", "exec", "--lab", seed_lab.name, "home", "--", "sh", "-c",
            "cat /proc/1/comm; hostname; readlink /proc/self/ns/pid; pgrep -c .")
    comm, host, ns, count = r.stdout.split()
    assert (comm, host) == ("catatonit", "home")
    assert ns == f"pid:[{pidns_of(seed_lab, 'home')}]"
    assert int(count) == len(in_node(seed_lab, "home")) + 1          # sh (pgrep leaves itself out)


def test_a_node_cannot_signal_another_nodes_process(seed_lab, cli):
    need_wireguard_go(seed_lab)
    [bcc_wg] = in_node(seed_lab, "bcc", "wireguard-go")
    home_pids = {_node_pid(p) for p in in_node(seed_lab, "home")}
    assert bcc_wg not in home_pids            # (pids in a node are small: this holds by far)
    r = cli("lab", "exec", "--lab", seed_lab.name, "home", "--", "kill", "-TERM", str(bcc_wg))
    assert r.returncode != 0 and "No such process" in r.stderr, r.stderr
    assert _starttime(bcc_wg) is not None, "bcc's wireguard-go was killed from home"
    r = cli("lab", "exec", "--lab", seed_lab.name, "home", "--", "pkill", "-0", "-x", "sshd")
    assert r.returncode == 1, "home has no sshd, and target's is not home's to see"


def _node_pid(pid: int) -> int:
    """The pid a node's process has in its node."""
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("NSpid:")).split()[-1])


def test_shell_in_a_node_ps_ctrl_c_and_exit_code(seed_lab):
    pexpect = pytest.importorskip("pexpect")
    c = pexpect.spawn(sys.executable, ["-m", "wgtrace", "shell", "company", "--lab", seed_lab.name],
                      encoding="utf-8", timeout=20, dimensions=(40, 200))
    try:
        prompt = rf"\[{seed_lab.name}\] company:.*# "
        c.expect(prompt)
        c.sendline("echo proc''s: $(ps -e -o comm= | sort)")      # the echoed line does not match
        c.expect(r"procs: ([^\r\n]*)")
        comms = c.match.group(1).split()
        assert "catatonit" in comms and "bash" in comms and "sshd" not in comms, comms
        c.expect(prompt)
        c.sendline("sleep 100")
        time.sleep(0.5)
        c.sendintr()
        c.expect(prompt, timeout=5)
        c.sendline("echo status=$?")
        c.expect(r"status=(\d+)")
        assert c.match.group(1) == "130"
        c.expect(prompt)
        c.sendline("exit 4")
        c.expect(pexpect.EOF)
    finally:
        c.close()
    assert c.exitstatus == 4


# --- teardown ---------------------------------------------------------------------------------------

SEED_FAULTS = load_faults(str(find_lab("seed")))


def test_lab_down_removes_what_a_student_and_a_fix_started_and_nothing_else(lab_factory, cli, leftovers):
    lab = lab_factory.up()
    other = lab_factory.up()
    other_before = {n: set(in_node(other, n)) for n in other.model.nodes}
    inodes = lab.netns_inodes()
    # on this machine, outside every lab, a process that merely carries the lab's mark
    decoy = subprocess.Popen(["sleep", "1000"], env={**os.environ, "WGTRACE_LAB": lab.name})
    try:
        # a student's: one left behind in the background, one that left the node's network
        # namespace and environment (neither the old network-namespace nor the mark scan finds it)
        r = cli("lab", "exec", "--lab", lab.name, "target", "--", "sh", "-c",
                "exec >/dev/null 2>&1; sleep 1000 & setsid -f env -i unshare --net sleep 1001")
        assert r.returncode == 0, r.stderr
        time.sleep(0.3)
        sleeps = in_node(lab, "target", "sleep")
        assert len(sleeps) == 2, sleeps
        target_net = os.stat(lab.node("target").netns_path).st_ino
        escaped = [p for p in sleeps if os.stat(f"/proc/{p}/ns/net").st_ino != target_net]
        assert len(escaped) == 1 and f"WGTRACE_LAB={lab.name}".encode() not in _environ(escaped[0])

        # the fix for a stopped sshd starts a new one (its process title overwrites its environment)
        inject(find_fault(SEED_FAULTS, "target-sshd-stopped"), lab.state)
        time.sleep(0.3)
        assert not in_node(lab, "target", "sshd")
        r = cli("diagnose", "home", "target", "--tcp", "22", "--lab", lab.name, "--fix", "--json")
        assert r.returncode == 0, r.stdout
        [sshd] = in_node(lab, "target", "sshd")
        assert f"WGTRACE_LAB={lab.name}".encode() not in _environ(sshd)

        started = {p: _starttime(p) for p in [*sleeps, sshd, *in_node(lab, "target")]}
        r = cli("lab", "down", lab.name)
        assert r.returncode == 0, r.stderr
        assert [p for p, t in started.items() if _starttime(p) == t] == []
        assert [line for line in leftovers(lab.name, inodes) if f"process {decoy.pid} " not in line] == []
        assert decoy.poll() is None, "a process outside the lab was killed"
        assert {n: set(in_node(other, n)) for n in other.model.nodes} == other_before
        assert cli("check", "--all", "--lab", other.name).returncode == 0
    finally:
        decoy.kill()
        decoy.wait()


def test_kill_1_in_a_node_ends_that_node_and_the_lab_says_it_is_broken(lab_factory, cli, leftovers):
    lab = lab_factory.up("base")
    inodes = lab.netns_inodes()
    company = set(in_node(lab, "company"))
    r = cli("lab", "exec", "--lab", lab.name, "company", "--", "kill", "1")
    assert "Traceback" not in r.stderr
    deadline = time.monotonic() + 5
    while any(_starttime(p) for p in company) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_starttime(p) for p in company), "company's processes outlived its init"
    for args in (["lab", "status", "--lab", lab.name], ["diagnose", "home", "target", "--lab", lab.name],
                 ["lab", "exec", "--lab", lab.name, "company", "--", "true"]):
        r = cli(*args)
        assert r.returncode == 5, (args, r.stderr)
        assert "company" in r.stderr and "lab down" in r.stderr and "Traceback" not in r.stderr
    assert cli("lab", "down", lab.name).returncode == 0
    assert leftovers(lab.name, inodes) == []


def test_a_dead_child_of_ours_in_a_node_does_not_hold_its_init(lab_factory, leftovers):
    """A command this process started in a node, ended and not waited for yet, is a zombie in
    that node's PID namespace: the node's init cannot finish its exit until it is reaped, and a
    zombie has no namespaces to be found by. Taking the lab down in the same process reaps it,
    so nothing of the lab is left when lab_down returns (it used to wait 15 s and leave the
    init behind until this process ended)."""
    from wgtrace.lab.teardown import lab_down
    lab = lab_factory.up()
    inodes = lab.netns_inodes()
    job = lab.node("home").start(["true"])
    for _ in range(200):
        with open(f"/proc/{job.proc.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    else:
        pytest.fail("the command in home did not end")
    assert lab_down(lab.name)
    assert leftovers(lab.name, inodes) == []
    assert not os.path.exists(f"/proc/{job.proc.pid}")
