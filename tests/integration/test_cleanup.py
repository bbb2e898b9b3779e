"""Nothing of a lab outlives it: not after many cycles, not after ``lab up`` is killed or
interrupted half-way, not after a test that used it failed.

"Nothing" means, for this lab's name only (other people's labs run beside these tests):
no /run/netns/wgt-<lab>-*, no /run/wgtrace/<lab>, and no live process in one of the lab's
network namespaces (by the namespace inode, recorded while the lab existed) or started by
wgtrace for the lab (WGTRACE_LAB=<lab> in its environment: the nodes' inits have it).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wgtrace.errors import ExitStatus
from wgtrace.lab.runtime import load_state

pytestmark = pytest.mark.lab


# --- (a) many cycles ---------------------------------------------------------------------------

def test_twenty_up_down_cycles_leave_nothing(lab_factory, labtools, leftovers):
    name = lab_factory.fresh_name()
    seen: set[int] = set()
    for cycle in range(20):
        with lab_factory.running(name=name) as lab:
            inodes = lab.netns_inodes()
            assert len(inodes) == 7
            if lab.state.wg_impl == "wireguard-go":
                assert len(wireguard_go(labtools, name, inodes)) == 3
            seen |= inodes
        assert leftovers(name, inodes) == [], f"after cycle {cycle}"
    assert leftovers(name, seen) == []


# --- (b), (c): lab up killed or interrupted half-way -------------------------------------------------

def start_up(name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "wgtrace", "lab", "up", "--name", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})


def _reached(labtools, name: str, point: str) -> bool:
    if point == "namespaces":               # some nodes made (namespaces and init), not all
        inodes = labtools.netns_inodes(name)
        return len([c for _, c, _ in labtools.processes(name, inodes) if c == "catatonit"]) >= 3
    # "stages": the stages are being typed: some wireguard-go runs (stage wg0 on some node);
    # with kernel WireGuard, the state records the stage once it is applied
    st = load_state(name)
    if st is not None and st.wg_impl == "kernel":
        return st.stage >= 1
    inodes = labtools.netns_inodes(name)
    return bool(inodes) and bool(wireguard_go(labtools, name, inodes))


def wait_mid_build(labtools, p: subprocess.Popen, name: str, point: str, timeout: float = 30) -> set[int] | None:
    """Wait until the build of ``name`` reaches ``point`` (about 0.25-0.7 s after start, as
    the interpreter starts first), stop it there (SIGSTOP: it goes no further while the test
    looks), and return the lab's namespace inodes at that moment; None if the build had already
    finished by then (a fast machine: try again)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            pytest.fail(f"lab up ended (exit {p.returncode}) before reaching {point}: {p.stderr.read()}")
        if _reached(labtools, name, point):
            p.send_signal(signal.SIGSTOP)
            st = load_state(name)
            if st is not None and st.complete:
                return None
            return labtools.netns_inodes(name)
        time.sleep(0.002)
    p.kill()
    pytest.fail(f"lab up did not reach {point} in {timeout} s")


def stopped_mid_build(labtools, name: str, point: str, tries: int = 5) -> tuple[subprocess.Popen, set[int]]:
    """A ``lab up`` stopped at ``point``, with the lab's namespace inodes; a build that won the
    race is taken down and started again."""
    from wgtrace.lab.teardown import lab_down
    for _ in range(tries):
        p = start_up(name)
        inodes = wait_mid_build(labtools, p, name, point)
        if inodes is not None:
            return p, inodes
        p.kill()
        p.communicate(timeout=30)
        lab_down(name)
    pytest.fail(f"lab up finished before it could be stopped at {point}, {tries} times")


def wireguard_go(labtools, name: str, inodes: set[int]) -> list[int]:
    return [pid for pid, comm, _ in labtools.processes(name, inodes) if comm == "wireguard-go"]


POINTS = ["namespaces", "stages"]


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_mid_build_then_down(lab_factory, labtools, cli, leftovers, point):
    name = lab_factory.fresh_name()
    p, inodes = stopped_mid_build(labtools, name, point)
    assert inodes
    daemons = wireguard_go(labtools, name, inodes)
    if point == "stages" and load_state(name).wg_impl == "wireguard-go":
        for _ in range(100):                 # wireguard-go starts itself again as a daemon: a moment between
            if daemons:
                break
            time.sleep(0.02)
            daemons = wireguard_go(labtools, name, inodes)
        assert daemons, "stage wg0 is applied but no wireguard-go runs"
    inits = [pid for pid, comm, _ in labtools.processes(name, inodes) if comm == "catatonit"]
    assert inits, "namespaces are made but no node's init runs"
    p.kill()
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    inodes |= labtools.netns_inodes(name)           # one more may have been finished by a helper
    assert leftovers(name, inodes), "the kill came too late: nothing was left half-built"

    r = cli("lab", "up", "--name", name)
    assert r.returncode == ExitStatus.LAB_STATE, r.stderr
    assert "Traceback" not in r.stderr
    [line] = r.stderr.strip().splitlines()
    assert "half-built" in line and f"lab down {name}" in line

    r = cli("lab", "down", name)
    assert r.returncode == 0, r.stderr
    assert leftovers(name, inodes) == []
    assert wireguard_go(labtools, name, inodes) == [], f"of {daemons} some survived lab down"


@pytest.mark.parametrize("point", POINTS)
def test_sigint_mid_build_cleans_up_by_itself(lab_factory, labtools, leftovers, point):
    name = lab_factory.fresh_name()
    p, inodes = stopped_mid_build(labtools, name, point)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGCONT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == ExitStatus.INTERRUPTED, err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert leftovers(name, inodes) == []


# --- (d) a failing test's lab ---------------------------------------------------------------------

def test_context_manager_tears_down_when_the_body_raises(lab_factory, leftovers):
    with pytest.raises(RuntimeError, match="simulated test failure"):
        with lab_factory.running() as lab:
            name, inodes = lab.name, lab.netns_inodes()
            assert leftovers(name, inodes)          # it is really there
            raise RuntimeError("simulated test failure")
    assert leftovers(name, inodes) == []


INNER_TESTS = '''
import os

def record(lab):
    with open(os.environ["WGT_INNER_RECORD"], "a") as f:
        f.write(" ".join([lab.name, *map(str, lab.netns_inodes())]) + "\\n")

def test_fails_with_a_factory_lab(lab_factory):
    record(lab_factory.up(stage=1))
    assert False, "simulated failure"

def test_errors_with_the_seed_lab(seed_lab):
    record(seed_lab)
    raise RuntimeError("simulated error")
'''


def test_fixtures_tear_down_after_real_failing_tests(tmp_path: Path, leftovers):
    """Run failing tests in a pytest of their own, with this suite's conftest; afterwards,
    nothing of their labs is left."""
    (tmp_path / "conftest.py").write_text((Path(__file__).parent.parent / "conftest.py").read_text())
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    record = tmp_path / "labs.txt"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "WGT_INNER_RECORD": str(record),
                            "PYTHONPATH": str(Path(__file__).resolve().parents[2])})   # this tree's wgtrace
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2 failed" in r.stdout, r.stdout
    labs = [line.split() for line in record.read_text().splitlines()]
    assert len(labs) == 2
    for name, *inodes in labs:
        assert len(inodes) == 7
        assert leftovers(name, {int(i) for i in inodes}) == []
