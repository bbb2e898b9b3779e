"""A handle on one node of a running lab: run a command there, open netlink there.

This is the narrow interface the rest of wgtrace uses to touch a node (run a
command, open a socket or netlink in its namespace), so that another kind of
node (a real host over SSH) can later stand behind the same methods.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from . import nsexec
from .runtime import NETNS_DIR, netns_name, node_dir

SHIM_DIR = Path(__file__).resolve().parent / "shim"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Job:
    """A command running in a node. Output goes to files, not pipes: a daemon the command
    starts (wireguard-go, sshd) may keep its stdout open long after the command ends."""

    def __init__(self, node: "NodeHandle", argv: list[str], input: str | None) -> None:
        self.argv = argv
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.input = input
        # A session of its own: daemons it starts must outlive our terminal (no SIGHUP, no Ctrl-C).
        self.proc = node.popen(argv, stdout=self.out, stderr=self.err, start_new_session=True,
                               stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)

    def wait(self, timeout: float = 30) -> subprocess.CompletedProcess:
        try:
            self.proc.communicate(self.input.encode() if self.input is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.out.seek(0)
            self.err.seek(0)
            out, err = self.out.read(), self.err.read()
            self.out.close()
            self.err.close()
        return subprocess.CompletedProcess(self.argv, self.proc.returncode, out.decode(errors="replace"),
                                           err.decode(errors="replace"))


class NodeHandle:
    def __init__(self, lab: str, name: str, wg_impl: str = "kernel") -> None:
        self.lab = lab
        self.name = name
        self.wg_impl = wg_impl
        self.netns = netns_name(lab, name)
        self.netns_path = str(NETNS_DIR / self.netns)
        self.dir = node_dir(lab, name)

    # --- processes ---------------------------------------------------------------
    def env(self) -> dict[str, str]:
        path = BASE_PATH
        if self.wg_impl == "wireguard-go":
            path = f"{SHIM_DIR}:{path}"
        env = {k: v for k, v in os.environ.items() if k in ("TERM", "LANG", "LC_ALL", "COLUMNS", "LINES")}
        env.update(PATH=path, HOME="/root", WGTRACE_NODE=self.name, WGTRACE_LAB=self.lab,
                   WGTRACE_REAL_IP=shutil.which("ip", path=BASE_PATH) or "/usr/sbin/ip",
                   WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1")
        return env

    def preexec(self):
        return nsexec.preexec(self.netns_path, str(self.dir / "run"), str(self.dir / "home"), self.name)

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        env = self.env()
        env.update(kw.pop("env", {}) or {})
        return subprocess.Popen(list(argv), preexec_fn=self.preexec(), env=env, **kw)

    def run(self, argv: Sequence[str] | str, check: bool = False, timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run and capture output."""
        res = self.start(argv, input=input).wait(timeout)
        if check and res.returncode != 0:
            res.check_returncode()
        return res

    def start(self, argv: Sequence[str] | str, input: str | None = None) -> "Job":
        """Start a command without waiting (several nodes can work at once)."""
        if isinstance(argv, str):
            argv = ["sh", "-c", argv]
        return Job(self, list(argv), input)

    # --- netlink and sockets inside the node ------------------------------------------
    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Switch this thread into the node's network namespace (for opening sockets); sockets
        opened here stay in the node. Done with setns(2) directly: no netlink library needed."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            nsexec.setns(self.netns_path, nsexec.CLONE_NEWNET)
            try:
                yield
            finally:
                nsexec.setns_fd(home, nsexec.CLONE_NEWNET)
        finally:
            os.close(home)

    @contextlib.contextmanager
    def iproute(self):
        from pyroute2 import IPRoute
        with self.inside():
            ipr = IPRoute()
        try:
            yield ipr
        finally:
            ipr.close()

    def read_sysctl(self, key: str) -> str | None:
        """A net.* sysctl as the node sees it (/proc/sys/net follows the opener's namespace)."""
        path = "/proc/sys/" + key.replace(".", "/")
        with self.inside():
            try:
                with open(path) as f:
                    return f.read().strip()
            except OSError:
                return None
