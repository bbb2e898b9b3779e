"""Run a process inside a lab node.

A node is a set of namespaces held by its init (nodes/nsinit.py): network, PID, mount (the
node's own /run, /root, /proc, /sys) and UTS (its hostname). A command joins them: the calling
thread points its PID namespace for children at the node's (setns(2) on the init's pidfd), so
the fork that subprocess makes is born in the node, and the child joins the network, mount and
UTS namespaces before it executes. Its parent is still the caller: exit codes, Ctrl-C, the
terminal and ``Popen.kill`` work as for any child, and ``ps`` in the node shows the node alone.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from typing import Iterator

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, target: str, fstype: str | None, flags: int) -> None:
    _check(_libc.mount(src and src.encode(), target.encode(),
                       fstype and fstype.encode(), flags, None), f"mount {target}")


def setns(path: str, nstype: int) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise OSError(2, f"no namespace {path}") from None
    try:
        setns_fd(fd, nstype)
    finally:
        os.close(fd)


def setns_fd(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


_own_pidns: list[int] = []          # our own PID namespace (every thread's), to come back to


@contextlib.contextmanager
def children_in(pidfd: int) -> Iterator[None]:
    """While inside, processes this thread forks are born in the PID namespace of the process
    behind ``pidfd`` (only this thread's children: other threads are not affected)."""
    if not _own_pidns:
        _own_pidns.append(os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC))
    setns_fd(pidfd, CLONE_NEWPID)
    try:
        yield
    finally:
        setns_fd(_own_pidns[0], CLONE_NEWPID)


def joiner(pidfd: int):
    """A ``preexec_fn`` for subprocess: join the network, mount and UTS namespaces of the process
    behind ``pidfd``, in the node's home (joining a mount namespace leaves us at its /)."""
    def _fn() -> None:
        setns_fd(pidfd, CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWUTS)
        os.chdir("/root")
    return _fn


def ns_id(pid: int | str, kind: str) -> tuple[int, int] | None:
    """(device, inode) of a process's namespace of ``kind`` ("net", "pid"), None if it is gone."""
    try:
        st = os.stat(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None
    return st.st_dev, st.st_ino


def nspid(pid: int | str) -> list[int]:
    """The process's pid in each PID namespace from ours down to its own ([] if it is gone or a
    zombie, which keeps its pids until it is reaped)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return []
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if fields.get("State", "Z").split()[:1] in (["Z"], ["X"]):
        return []
    try:
        return [int(x) for x in fields.get("NSpid", "").split()]
    except ValueError:
        return []


def is_init(pid: int, pidns_ino: int) -> bool:
    """Is ``pid`` still pid 1 of the PID namespace with inode ``pidns_ino`` (a node's init), and
    alive?"""
    ns = ns_id(pid, "pid")
    return ns is not None and ns[1] == pidns_ino and nspid(pid)[-1:] == [1]
