"""The machine wgtrace runs on as a node of the network (``local = true`` in a hosts file): the third
implementation of ``nodes.base.Node``, beside a lab's namespace and a host over SSH.

It is read with a lab node's own code (nodes/netns.py: netlink and /proc in process, one packet
socket for the capture, a raw socket for the probe), in the namespace wgtrace runs in, without
entering any other; commands run here as they are typed, with the guard of a host that is
someone's machine (nodes/guard.py): only reads without ``--fix``, and a change only when the
operator says yes. An operator's laptop is the usual source of a probe.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, Sequence

from .base import CaptureSource, LinkInfo, RouteInfo
from .guard import read_only, wg_argv
from .netns import NetnsNode
from .sshstate import HostState, parse_snapshot, snapshot_script

PATH_TAIL = "/usr/local/sbin:/usr/sbin:/sbin"


class LocalNode(NetnsNode):
    kind = "local"

    def __init__(self, name: str, ignore: Sequence[str] = ()) -> None:
        super().__init__("/proc/self/ns/net", Path("/"), name, lab="", wg_impl="kernel")
        self.ignore = set(ignore)             # interfaces left out of the picture (the hosts file's ignore)
        self.confirm = None                   # --fix: asks before a change runs (node, argv) -> bool
        self.state: HostState | None = None
        self.problem = ""
        if os.geteuid() != 0:
            self.problem = (f"{name} is this machine, and wgtrace runs here as uid {os.geteuid()}: capturing, "
                            f"sending the probe and reading the firewall need root; run wgtrace with sudo.")

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        yield                                 # already here: this is the namespace wgtrace runs in

    def env(self) -> dict[str, str]:
        path = os.environ.get("PATH", "/usr/bin:/bin")
        return {**os.environ, "PATH": f"{path}:{PATH_TAIL}"}

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        argv = list(argv)
        env = {**self.env(), **(kw.pop("env", None) or {})}
        if self.problem:
            raise OSError(self.problem)
        if not read_only(argv) and (self.confirm is None or not self.confirm(self.name, argv)):
            why = "not run: declined" if self.confirm else "not run: wgtrace changes nothing on a host without --fix"
            return subprocess.Popen([sys.executable, "-c", f"import sys; sys.stderr.write({why!r}); sys.exit(1)"], **kw)
        return subprocess.Popen(wg_argv(argv), env=env, **kw)

    def ask_before_changes(self, confirm) -> None:
        self.confirm = confirm

    def refresh(self) -> HostState | None:
        """This machine's state as a host's snapshot reads it (the same script, run here)."""
        if self.problem:
            return None
        script, mark = snapshot_script(False)
        r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=20, env=self.env(),
                           stdin=subprocess.DEVNULL)
        self.state = parse_snapshot(r.stdout, mark)
        self._names = None
        return self.state

    def unseen(self) -> str:
        return self.problem

    # --- the hosts file's ignore: those interfaces are not part of the picture ------------------
    def links(self) -> dict[str, LinkInfo]:
        return {n: l for n, l in super().links().items() if n not in self.ignore}

    def routes(self, table: int = 254, family: int = 4) -> list[RouteInfo]:
        return [r for r in super().routes(table, family) if r.dev not in self.ignore]

    def route_table(self, family: int = 4):
        return [r for r in super().route_table(family) if r[2] not in self.ignore]

    def neighbours(self, family: int = 4):
        return [n for n in super().neighbours(family) if n[0] not in self.ignore]

    def open_capture(self) -> CaptureSource:
        source = super().open_capture()
        return _Skipping(source, self.ignore) if self.ignore else source


class _Skipping(CaptureSource):
    """A capture that leaves out frames of ignored interfaces."""

    def __init__(self, source: CaptureSource, ignore: set[str]) -> None:
        self.source, self.ignore = source, ignore

    def fileno(self) -> int:
        return self.source.fileno()

    def read(self):
        frames = self.source.read()
        return None if frames is None else [f for f in frames if f.iface not in self.ignore]

    def ifaces(self) -> list[str]:
        return [i for i in self.source.ifaces() if i not in self.ignore]

    def close(self) -> None:
        self.source.close()
