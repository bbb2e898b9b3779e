"""Remove everything a lab made: its processes, namespaces and files.

Works from the state file when there is one, and from the naming scheme
(``wgt-<lab>-*`` namespaces, ``/run/wgtrace/<lab>``) when a crash left no usable
state. A lab's processes are those in its nodes' PID namespaces and in its network
namespaces, never found by name. Killing a node's init makes the kernel kill every process
of the node, also those a student or a fix started (an sshd, whose process title overwrites
its environment; a command that left the node's network namespace): nothing is left holding
a namespace, and nothing outside the lab is touched.
"""
from __future__ import annotations

import os
import shutil
import signal
import time

from ..errors import UsageError
from ..model.labfile import LAB_NAME_RE
from ..nodes.nsexec import is_init, ns_id, nspid
from .runtime import NETNS_DIR, RUN_ROOT, LabState, lab_dir, load_state, running_labs


def _lab_netns(lab: str) -> list[str]:
    names = set()
    st = load_state(lab)
    if st:
        names |= set(st.netns)
    if NETNS_DIR.is_dir():
        # Lab names have no '-', so "wgt-<lab>-" can't match another lab's namespaces.
        prefix = f"wgt-{lab}-"
        names |= {p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix)}
    return sorted(names)


def _netns_ids(names: list[str]) -> set[tuple[int, int]]:
    """The lab's network namespaces that are still pinned, by (device, inode) of nsfs. A file in
    /run/netns that is no longer a namespace (its mount gone after a crash) has a tmpfs inode
    number, which may equal some other lab's namespace inode: matching on st_ino alone would
    kill that lab's processes."""
    nsfs = os.stat("/proc/self/ns/net").st_dev
    ids = set()
    for n in names:
        try:
            st = os.stat(NETNS_DIR / n)
        except OSError:
            continue
        if st.st_dev == nsfs:
            ids.add((st.st_dev, st.st_ino))
    return ids


def _marked_init(pid: str, marker: bytes) -> bool:
    """pid 1 of a PID namespace one below ours, whose environment carries the lab's mark."""
    ns = nspid(pid)
    if len(ns) != 2 or ns[1] != 1:
        return False
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def _pids_of(lab: str, st: LabState | None, netns: set[tuple[int, int]]) -> list[int]:
    """The lab's processes, inits first: the inits recorded in its state (checked to be pid 1 of
    the recorded namespace: a namespace's inode number is reused once it is gone), every process
    in those PID namespaces or in the lab's network namespaces, and the PID namespaces of those
    (made by a lab up that crashed before recording them). Without recorded inits (a crash, a
    lost state), also a node's init found by the lab's mark in its environment."""
    me = os.getpid()
    own_pid = ns_id("self", "pid")
    inits = {pid: ino for pid, ino in (st.inits.values() if st else ()) if is_init(pid, ino)}
    pidns = set(inits.values())
    look_for_marks = not (st and st.inits)
    marker = f"WGTRACE_LAB={lab}".encode()
    pids: set[int] = set()
    foreign: list[tuple[int, int]] = []       # (pid, PID namespace inode) beyond our namespace
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        p_ns = ns_id(entry, "pid")
        if p_ns is None:
            continue
        if ns_id(entry, "net") in netns:
            pids.add(int(entry))
            if p_ns != own_pid and nspid(entry)[-1:] == [1]:
                pidns.add(p_ns[1])                   # a node's init not recorded yet
        elif p_ns != own_pid:
            foreign.append((int(entry), p_ns[1]))
            if look_for_marks and _marked_init(entry, marker):
                pidns.add(p_ns[1])
    pids |= {p for p, ino in foreign if ino in pidns}
    return sorted(pids, key=lambda p: (p not in inits, p))


def lab_down(lab: str) -> bool:
    """Tear ``lab`` down; True if there was anything to remove."""
    if not LAB_NAME_RE.match(lab):
        # The name becomes a path that is rmtree'd: "/" or ".." must never get that far.
        raise UsageError(f"{lab!r} is not a lab name (lower-case letters and digits, "
                         f"at most 12 characters).")
    names = _lab_netns(lab)
    st = load_state(lab)
    netns = _netns_ids(names)
    # Kill, and look again: a process may fork between the scan and the kill (inits first: then
    # nothing in their nodes can fork any more).
    for _ in range(5):
        _reap_our_zombies()
        pids = [p for p in _pids_of(lab, st, netns) if not _zombie(p)]
        if not pids:
            break
        _kill_all(pids)
    for n in names:
        _remove_netns(n)
    existed = bool(names) or lab_dir(lab).exists()
    shutil.rmtree(lab_dir(lab), ignore_errors=True)
    _last_one_out()
    return existed


def leftovers(lab: str) -> list[str]:
    """What of ``lab`` is still on this machine (namespaces, its directory, its nodes' inits:
    while an init lives, so may every process of its node)."""
    left = [f"namespace {n}" for n in _lab_netns(lab) if (NETNS_DIR / n).exists()]
    if lab_dir(lab).exists():
        left.append(f"directory {lab_dir(lab)}")
    marker = f"WGTRACE_LAB={lab}".encode()
    left += [f"process {p}" for p in os.listdir("/proc")
             if p.isdigit() and _marked_init(p, marker) and not _zombie(int(p))]
    return left


def _last_one_out() -> None:
    """When no lab is left, remove /run/wgtrace, and /run/netns if a lab created it."""
    if not RUN_ROOT.is_dir() or any(p.is_dir() for p in RUN_ROOT.iterdir()):
        return
    marker = RUN_ROOT / "made-run-netns"
    if marker.exists() and NETNS_DIR.is_dir() and not any(NETNS_DIR.iterdir()):
        from ..nodes.nsexec import MNT_DETACH, _libc
        _libc.umount2(str(NETNS_DIR).encode(), MNT_DETACH)
        try:
            NETNS_DIR.rmdir()
        except OSError:
            pass
    marker.unlink(missing_ok=True)
    try:
        RUN_ROOT.rmdir()
    except OSError:
        pass


def _kill_all(pids: list[int]) -> None:
    """SIGKILL, no SIGTERM first: the namespaces go, so nothing needs to clean up after itself;
    a node's init takes its node with it. Wait until they are gone; one of them that is our own
    child (a command we started in a node) we reap, or its init would wait for it."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 3.0
    while pids and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        pids = [p for p in pids if os.path.exists(f"/proc/{p}") and not _zombie(p)]
        if pids:
            time.sleep(0.005)


def _remove_netns(name: str) -> None:
    """What ``ip netns del`` does: detach the bind mount that pins the namespace, remove the file
    (done with libc here, so tearing down needs no netlink library)."""
    from ..nodes.nsexec import MNT_DETACH, _libc
    path = NETNS_DIR / name
    _libc.umount2(str(path).encode(), MNT_DETACH)
    try:
        path.unlink()
    except OSError:
        pass


def _reap_our_zombies() -> None:
    """Reap this process's children that died in a node's PID namespace and were not waited for
    yet (a probe's helper): a zombie there, whose parent is outside, keeps the node's init in
    its exit until it is reaped, and a zombie has no namespaces to be found by."""
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if (status.get("PPid", "").strip() == me and status.get("State", "").split()[:1] == ["Z"]
                and len(status.get("NSpid", "").split()) > 1):
            try:
                os.waitpid(int(entry), os.WNOHANG)
            except ChildProcessError:
                pass


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def all_labs() -> list[str]:
    """Every lab with something on this machine, including crashed ones."""
    names = set(running_labs())
    if NETNS_DIR.is_dir():
        names |= {p.name.split("-")[1] for p in NETNS_DIR.iterdir()
                  if p.name.startswith("wgt-") and p.name.count("-") >= 2}
    return sorted(names)


def down(lab: str | None = None, all_: bool = False) -> list[tuple[str, bool]]:
    """``lab down``: the named lab, every lab (``all_``), or the only one up. (name, removed) each."""
    labs = all_labs()
    if all_:
        targets = labs
    elif lab:
        targets = [lab]
    elif len(labs) <= 1:
        targets = labs
    else:
        raise UsageError(f"several labs are up ({', '.join(labs)}): name one, or use --all.")
    return [(name, lab_down(name)) for name in targets]
