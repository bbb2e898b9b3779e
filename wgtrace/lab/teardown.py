"""Remove everything a lab made: its processes, namespaces and files.

Works from the state file when there is one, and from the naming scheme
(``wgt-<lab>-*`` namespaces, ``/run/wgtrace/<lab>``) when a crash left no usable
state. Processes are found by the network namespace they live in, never by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import time

from ..errors import UsageError
from ..model.labfile import LAB_NAME_RE
from .runtime import NETNS_DIR, RUN_ROOT, lab_dir, load_state, running_labs


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


def _pids_in(netns_inodes: set[tuple[int, int]], lab: str) -> list[int]:
    """Processes of the lab: living in one of its namespaces, or started by wgtrace in one of its
    nodes (every such process carries WGTRACE_LAB=<lab> in its environment, even if its
    namespace has already lost its name)."""
    pids = []
    me = os.getpid()
    marker = f"WGTRACE_LAB={lab}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
            if (st.st_dev, st.st_ino) in netns_inodes:
                pids.append(int(entry))
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def lab_down(lab: str) -> bool:
    """Tear ``lab`` down; True if there was anything to remove."""
    if not LAB_NAME_RE.match(lab):
        # The name becomes a path that is rmtree'd: "/" or ".." must never get that far.
        raise UsageError(f"{lab!r} is not a lab name (lower-case letters and digits, "
                         f"at most 12 characters).")
    names = _lab_netns(lab)
    # A namespace is identified by (device, inode) of nsfs. A file in /run/netns that is no longer
    # a namespace (its mount gone after a crash) has a tmpfs inode number, which may equal some
    # other lab's namespace inode: matching on st_ino alone would kill that lab's processes.
    nsfs = os.stat("/proc/self/ns/net").st_dev
    inodes = set()
    for n in names:
        try:
            st = os.stat(NETNS_DIR / n)
        except OSError:
            continue
        if st.st_dev == nsfs:
            inodes.add((st.st_dev, st.st_ino))
    # Scan, kill, and scan again: a process may fork (a daemon starting) between scan and kill.
    for _ in range(5):
        pids = [p for p in _pids_in(inodes, lab) if not _zombie(p)]
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
    """What of ``lab`` is still on this machine (namespaces, its directory, its processes)."""
    left = [f"namespace {n}" for n in _lab_netns(lab) if (NETNS_DIR / n).exists()]
    if lab_dir(lab).exists():
        left.append(f"directory {lab_dir(lab)}")
    left += [f"process {p}" for p in _pids_in(set(), lab) if not _zombie(p)]
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
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (1.0 if sig == signal.SIGTERM else 2.0)
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if os.path.exists(f"/proc/{p}") and not _zombie(p)]
            if pids:
                time.sleep(0.01)
        if not pids:
            return


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
