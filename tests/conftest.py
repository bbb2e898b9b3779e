"""Shared fixtures for the lab layer: real labs under unique names, always torn down.

Other people run labs on the same machine at the same time (``seed``, ``x...``, anything).
So every lab made here gets a name of its own, ``t<pid % 10000><counter>``, and tests only
ever look at, or remove, namespaces, directories and processes carrying one of those names.
Nothing here calls ``lab down --all`` or asserts anything about the machine as a whole.

Lab tests (marker ``lab``) need root and the tools a lab runs. Without them they are
skipped, unless ``WGTRACE_REQUIRE_LAB=1`` (CI sets it): then the run stops at collection
with the reason, because a CI run that skipped every lab test would prove nothing.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pytest

from wgtrace.model.lab import Lab
from wgtrace.nodes.netns import NetnsNode
from wgtrace.lab.runtime import LabState

REPO = Path(__file__).resolve().parent.parent
REQUIRE_ENV = "WGTRACE_REQUIRE_LAB"
LAB_FIXTURES = {"lab_factory", "seed_lab", "shared_labs"}

_counter = itertools.count(1)


# --- can lab tests run here? -----------------------------------------------------------------

def lab_blocker() -> str | None:
    """Why lab tests cannot run on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "not root: lab tests build network namespaces"
    from wgtrace.errors import WgtraceError
    from wgtrace.lab.preflight import choose_wg_impl, require_tools
    try:
        require_tools(choose_wg_impl())
    except WgtraceError as e:
        return e.message
    return None


def _lab_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs root and builds real labs in network namespaces")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lab_items = []
    for item in items:
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)       # a test that builds a lab is a lab test
        if item.get_closest_marker("lab"):
            lab_items.append(item)
    if not lab_items:
        return
    reason = lab_blocker()
    if reason is None:
        return
    if _lab_required():
        raise pytest.UsageError(f"{REQUIRE_ENV}=1 but the {len(lab_items)} lab tests cannot run "
                                f"here: {reason}")
    skip = pytest.mark.skip(reason=f"lab test: {reason} (set {REQUIRE_ENV}=1 to make this an error)")
    for item in lab_items:
        item.add_marker(skip)


def _need_lab() -> None:
    """For fixtures used outside a marked test: skip or fail the same way."""
    reason = lab_blocker()
    if reason is not None:
        if _lab_required():
            pytest.fail(f"{REQUIRE_ENV}=1 but lab tests cannot run here: {reason}", pytrace=False)
        pytest.skip(f"lab test: {reason}")


# --- names and what a lab leaves behind -----------------------------------------------------------

def fresh_lab_name() -> str:
    """A lab name nobody uses on this machine right now: t<pid % 10000><counter>."""
    from wgtrace.lab.runtime import NETNS_DIR, lab_dir
    while True:
        name = f"t{os.getpid() % 10000}{next(_counter)}"
        assert len(name) <= 12, name
        if lab_dir(name).exists():
            continue
        if NETNS_DIR.is_dir() and any(NETNS_DIR.glob(f"wgt-{name}-*")):
            continue
        return name


def netns_entries(name: str) -> list[Path]:
    """/run/netns/wgt-<name>-*: lab names have no '-', so no other lab's entries match."""
    from wgtrace.lab.runtime import NETNS_DIR
    return sorted(NETNS_DIR.glob(f"wgt-{name}-*")) if NETNS_DIR.is_dir() else []


def netns_inodes(name: str) -> set[int]:
    inodes = set()
    for p in netns_entries(name):
        try:
            inodes.add(os.stat(p).st_ino)
        except OSError:
            pass
    return inodes


def _proc_state(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def lab_processes(name: str, inodes: Iterable[int] = ()) -> list[tuple[int, str, str]]:
    """Live (non-zombie) processes of lab ``name``: (pid, comm, why).

    A process belongs to the lab when it runs in one of ``inodes`` (the lab's network
    namespaces, recorded while they existed) or when its environment says
    WGTRACE_LAB=<name> (every command wgtrace starts in a node gets that).
    A namespace inode that is now another lab's named namespace is not counted: the kernel
    reuses inode numbers of freed namespaces, and other people's labs come and go.
    """
    from wgtrace.lab.runtime import NETNS_DIR
    inodes = set(inodes)
    others = set()
    if inodes and NETNS_DIR.is_dir():
        for p in NETNS_DIR.iterdir():
            if not p.name.startswith(f"wgt-{name}-"):
                try:
                    others.add(os.stat(p).st_ino)
                except OSError:
                    pass
    marker = f"WGTRACE_LAB={name}".encode()
    me = str(os.getpid())
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or pid == me:
            continue
        why = None
        try:
            ino = os.stat(f"/proc/{pid}/ns/net").st_ino
            if ino in inodes and ino not in others:
                why = f"in netns inode {ino}"
        except OSError:
            pass
        if why is None:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        why = marker.decode()
            except OSError:
                pass
        if why and _proc_state(pid) not in ("Z", "X", "?"):
            found.append((int(pid), _comm(pid), why))
    return found


def lab_leftovers(name: str, inodes: Iterable[int] = ()) -> list[str]:
    """Everything of lab ``name`` still on the machine, as readable lines ([] = nothing)."""
    from wgtrace.lab.runtime import lab_dir
    left = [f"netns {p}" for p in netns_entries(name)]
    if lab_dir(name).exists():
        left.append(f"directory {lab_dir(name)}")
    left += [f"process {pid} ({comm}) {why}" for pid, comm, why in lab_processes(name, inodes)]
    return left


def _remove_if_left(name: str) -> None:
    """Tear down lab ``name`` if anything of it exists (only names this session made)."""
    from wgtrace.lab.runtime import lab_dir
    from wgtrace.lab.teardown import lab_down
    if lab_dir(name).exists() or netns_entries(name):
        lab_down(name)


# --- labs ------------------------------------------------------------------------------------

@dataclasses.dataclass
class RunningLab:
    model: Lab
    state: LabState

    @property
    def name(self) -> str:
        return self.model.name

    def node(self, node: str) -> NetnsNode:
        return self.state.node(node)

    def net(self):
        """The lab as trace and diagnose take it, open while a ``with`` block runs."""
        from wgtrace.opener import open_network
        return open_network(lab=self.name)

    def netns_inodes(self) -> set[int]:
        return netns_inodes(self.name)


class LabFactory:
    """Brings seed labs up under fresh names; every one of them comes down again."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._names: list[str] = []

    def fresh_name(self) -> str:
        """A free name for a lab a test builds another way (the CLI); removed at the end
        if anything of it is left."""
        name = fresh_lab_name()
        self._names.append(name)
        return name

    @contextlib.contextmanager
    def running(self, stage: int | str | None = None, name: str | None = None,
                lab_file: str = "seed", params: dict | None = None) -> Iterator[RunningLab]:
        """A lab (default: the seed), up at ``stage`` (default: the last) while the block runs;
        down after it, whatever happens inside."""
        from wgtrace.lab.build import lab_up
        from wgtrace.errors import LabStateError
        from wgtrace.model.labfile import load_lab
        from wgtrace.lab.teardown import lab_down
        for _ in range(20):
            model = load_lab(lab_file, rename=name or fresh_lab_name(), params=params)
            index = model.stage_index(stage) if stage is not None else None
            assert stage is None or index is not None, f"{lab_file} has no stage {stage!r}"
            try:
                state = lab_up(model, index)
            except LabStateError:
                # The name was taken between choosing it and building: someone else's lab,
                # so not ours to remove. An explicit name must be free: that is a failure.
                if name is not None:
                    raise
                continue
            except BaseException:
                lab_down(model.name)        # lab_up cleans up after itself; make sure
                raise
            break
        else:
            raise RuntimeError("no free lab name found")
        try:
            yield RunningLab(model, state)
        finally:
            lab_down(model.name)

    def up(self, stage: int | str | None = None, name: str | None = None, lab_file: str = "seed",
           params: dict | None = None) -> RunningLab:
        """Like ``running``, but down when the test ends (pass or fail)."""
        return self._stack.enter_context(self.running(stage, name, lab_file, params))

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            for name in self._names:
                _remove_if_left(name)


@pytest.fixture
def lab_factory() -> Iterator[LabFactory]:
    _need_lab()
    factory = LabFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def seed_lab() -> Iterator[RunningLab]:
    """One seed lab at its last stage, shared by a module's tests that only look at it."""
    _need_lab()
    factory = LabFactory()
    try:
        yield factory.up()
    finally:
        factory.close()


# --- the command line ------------------------------------------------------------------------

def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python3 -m wgtrace ARGS`` as a user would run it; output captured as text."""
    return subprocess.run([sys.executable, "-m", "wgtrace", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_cli


@pytest.fixture
def leftovers() -> Callable[..., list[str]]:
    """leftovers(name, inodes=()) -> what of lab ``name`` is still on the machine."""
    return lab_leftovers


@pytest.fixture
def labtools() -> types.SimpleNamespace:
    """The helpers above, for tests that look at a lab's traces themselves."""
    return types.SimpleNamespace(repo=REPO, netns_entries=netns_entries, netns_inodes=netns_inodes,
                                 processes=lab_processes, leftovers=lab_leftovers)
