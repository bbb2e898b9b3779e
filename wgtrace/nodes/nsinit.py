"""Make a lab's nodes: for each, a network namespace pinned under /run/netns, and an init.

The init is a tiny program (catatonit in pause mode: one process of about 50 kB that only reaps
orphans) started as pid 1 of a new PID namespace, inside a new mount namespace that shows the
node's own /run and /root (bind-mounted from its directory), a /proc of that PID namespace, a
/sys of its network namespace, and its name as hostname. Commands join the init's namespaces
(nodes/nsexec.py); daemons they start (wireguard-go, sshd) are reparented to it. The init holds
the node together: when it dies the kernel kills every process in the node, which is how a lab
is taken down, also what a student or a fix started there, and nothing outside it.

One forked helper makes every node of a lab (no program per node besides the init); it writes
each init's pid to a pipe as it goes. Nothing is mounted on the host but the /run/netns pins,
as ``ip netns add`` makes them; the node's mounts are private to it.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

from .nsexec import (CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS, MNT_DETACH, MS_BIND,
                     MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_REC, MS_SHARED, _check, _libc,
                     _mount, setns_fd)

PR_SET_PDEATHSIG = 1


@dataclass
class NodeSpec:
    netns_path: str                  # /run/netns/wgt-<lab>-<node>, made here
    run_dir: str                     # bind-mounted on the node's /run
    home_dir: str                    # bind-mounted on the node's /root
    hostname: str
    keep: list[str] = field(default_factory=list)    # paths under /root that stay visible
    env: dict[str, str] = field(default_factory=dict)  # the init's environment (the lab's mark)


def create_nodes(nodes: list[NodeSpec], init: str) -> list[int]:
    """Make every node; returns the pid of each node's init (in our PID namespace), in order.
    Raises OSError if one could not be made (those made before it are left for teardown, which
    finds them by their namespaces)."""
    netns_dir = os.path.dirname(nodes[0].netns_path)
    os.makedirs(netns_dir, exist_ok=True)
    # /run/netns a shared mount point, as ip netns makes it, so its pins show in every namespace.
    if _libc.mount(b"", netns_dir.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
        _mount(netns_dir, netns_dir, None, MS_BIND | MS_REC)     # not a mount point yet
        _mount(None, netns_dir, None, MS_SHARED | MS_REC)
    for n in nodes:
        os.close(os.open(n.netns_path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    r, w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:                                      # the helper: never returns
        code = 0
        try:
            os.close(r)
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)    # dies with a killed lab up
            if os.getppid() != parent:
                os._exit(1)
            _make_all(nodes, init, netns_dir, w)
        except BaseException as e:
            code = 1
            try:
                os.write(w, f"!{e}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            out = f.read()
    except BaseException:             # Ctrl-C: the helper stops too; teardown takes what it made
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.waitpid(pid, 0)
    lines = out.decode(errors="replace").splitlines()
    errors = [line[1:] for line in lines if line.startswith("!")]
    pids = [int(line) for line in lines if line.isdigit()]
    if errors or len(pids) != len(nodes):
        raise OSError(1, errors[0] if errors else "the helper making the nodes died")
    return pids


def _make_all(nodes: list[NodeSpec], init: str, netns_dir: str, out: int) -> None:
    """In the helper: for each node, from the host's namespaces, a network namespace pinned
    on its file, then new mount, UTS and PID namespaces, then the init forked into them."""
    host_mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    host_pid = os.open("/proc/self/ns/pid", os.O_RDONLY)
    template = _template(netns_dir)
    starting: list[tuple[str, int]] = []
    for n in nodes:
        setns_fd(host_mnt, CLONE_NEWNS)
        setns_fd(host_pid, CLONE_NEWPID)
        _check(_libc.unshare(CLONE_NEWNET), "unshare")
        _mount("/proc/self/ns/net", n.netns_path, None, MS_BIND)
        setns_fd(template, CLONE_NEWNS)
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID), "unshare")
        _node_mounts(n)
        name = n.hostname.encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            _exec_init(init, n, ready_w)
        os.close(ready_w)
        starting.append((n.hostname, ready_r))
        os.write(out, f"{pid}\n".encode())
    # Each init executes while the next node is made (on a busy machine every wait for a child
    # costs a turn of the scheduler): wait for all of them at the end.
    for hostname, ready_r in starting:
        with os.fdopen(ready_r, "rb") as f:
            failed = f.read()                          # EOF at exec: the init runs
        if failed:
            raise OSError(1, f"the init of {hostname} did not start: {failed.decode(errors='replace')}")


def _template(netns_dir: str) -> int:
    """A mount namespace to copy each node's from: the host's, private (nothing mounted later on
    the host shows in it, nothing in a node shows on the host), without /sys and /proc (each
    node gets its own) and without /run/netns, whose pins (one per node of every lab up) would
    be copied into every node, and hold those namespaces as long as the node lives."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MS_PRIVATE | MS_REC)
    _libc.umount2(netns_dir.encode(), MNT_DETACH)
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    _libc.umount2(b"/sys", MNT_DETACH)
    _libc.umount2(b"/proc", MNT_DETACH)
    return fd


def _node_mounts(n: NodeSpec) -> None:
    """The node's view, in its new mount namespace (a copy of the template): /sys of its network
    namespace (as `ip netns exec` shows it), its own /root and /run; /proc comes with the init."""
    _mount("sysfs", "/sys", "sysfs", 0)
    for path in n.keep:
        # Bound into the node's home first, so the recursive bind below carries them.
        spot = os.path.join(n.home_dir, os.path.relpath(path, "/root"))
        try:
            os.makedirs(spot, exist_ok=True)
            _mount(path, spot, None, MS_BIND | MS_REC)
        except OSError:
            pass          # not there: nothing to keep
    _mount(n.home_dir, "/root", None, MS_BIND | MS_REC)
    _mount(n.run_dir, "/run", None, MS_BIND)


def _exec_init(init: str, n: NodeSpec, ready: int) -> None:
    """pid 1 of the node: its own session (no terminal's Ctrl-C reaches it), the node's /proc,
    nothing open, then the init program. Never returns."""
    try:
        os.setsid()
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        os.chdir("/")
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, ready)
        os.closerange(ready + 1, 65536)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD):
            signal.signal(s, signal.SIG_DFL)
        os.execve(init, [os.path.basename(init), "-P"], n.env)
    except BaseException as e:
        try:
            os.write(ready, str(e).encode() or b"?")
        except OSError:
            pass
    finally:
        os._exit(127)

