"""Run a process inside a lab node.

A node is a network namespace plus a private view of two directories: the
node's own ``/run`` (so wireguard-go's ``/run/wireguard/wg0.sock`` belongs to
that node alone) and ``/root`` (its home, holding ``./private``). Each command
gets a fresh mount namespace in which those are bind-mounted, like
``ip netns exec`` does for ``/etc/netns``; nothing is mounted on the host.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
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


def enter_node(netns_path: str, run_dir: str | None, home_dir: str | None,
               hostname: str | None, keep: list[str] = ()) -> None:
    """Move the calling (single-threaded, freshly forked) process into a node. ``keep``: paths
    under /root that must stay visible over the node's own /root (the Python running wgtrace)."""
    setns(netns_path, CLONE_NEWNET)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    # Keep our mounts from propagating back to the host.
    _mount(None, "/", None, MS_SLAVE | MS_REC)
    # /sys must show this namespace's devices (as `ip netns exec` does).
    _libc.umount2(b"/sys", MNT_DETACH)
    _mount("sysfs", "/sys", "sysfs", 0)
    if home_dir:
        for path in keep:
            # Bound into the node's home first, so the recursive bind below carries them.
            spot = os.path.join(home_dir, os.path.relpath(path, "/root"))
            try:
                os.makedirs(spot, exist_ok=True)
                _mount(path, spot, None, MS_BIND | MS_REC)
            except OSError:
                pass          # not there: nothing to keep
        _mount(home_dir, "/root", None, MS_BIND | MS_REC)
    if run_dir:
        _mount(run_dir, "/run", None, MS_BIND)
    if hostname:
        name = hostname.encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")


def preexec(netns_path: str, run_dir: str | None, home_dir: str | None,
            hostname: str | None, keep: list[str] = ()):
    """A ``preexec_fn`` for subprocess that enters the node before exec."""
    def _fn() -> None:
        enter_node(netns_path, run_dir, home_dir, hostname, keep)
        if home_dir:
            os.chdir("/root")
    return _fn


MS_SHARED = 1 << 20


def create_netns(paths: list[str]) -> None:
    """What ``ip netns add`` does, for several namespaces with one fork: make /run/netns a shared
    mount point, then in a child, for each name, unshare a new network namespace and pin it by
    bind-mounting /proc/self/ns/net onto the file."""
    netns_dir = os.path.dirname(paths[0])
    os.makedirs(netns_dir, exist_ok=True)
    if _libc.mount(b"", netns_dir.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
        _mount(netns_dir, netns_dir, None, MS_BIND | MS_REC)     # not a mount point yet
        _mount(None, netns_dir, None, MS_SHARED | MS_REC)
    for p in paths:
        os.close(os.open(p, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for p in paths:
                _check(_libc.unshare(CLONE_NEWNET), "unshare")
                _mount("/proc/self/ns/net", p, None, MS_BIND)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError(1, "could not create the network namespaces")
