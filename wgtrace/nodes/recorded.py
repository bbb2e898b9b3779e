"""A node that serves recorded state: the third implementation of ``nodes.base.Node``.

It answers every read from a record (what a diagnosis kept of a node: links, routes, sysctls,
WireGuard, firewall rules and counters, route lookups) and runs no command but the reads it
recorded; it sends nothing and captures nothing. Unit tests use it to run trace, diagnose and
status code that holds a ``Node`` without root or a kernel, which is also the proof that
nothing above ``nodes/`` asks which kind of node it holds.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Sequence

from .base import CaptureSource, LinkInfo, Node, RouteInfo, RouteLookup
from .wgstate import WgIface


@dataclass
class Record:
    links: dict[str, LinkInfo] = field(default_factory=dict)
    routes: list[RouteInfo] = field(default_factory=list)
    neighbours: list[tuple[str, str, str]] = field(default_factory=list)
    sysctl: dict[str, str] = field(default_factory=dict)
    wg: list[WgIface] = field(default_factory=list)
    lookups: dict[tuple, RouteLookup] = field(default_factory=dict)    # (dst, src, iif) -> answer
    outputs: dict[tuple[str, ...], str] = field(default_factory=dict)   # argv -> what it printed


class _Done:
    """A job that has already finished (``Node.start`` for a recorded command)."""

    def __init__(self, argv: list[str], out: str | None) -> None:
        self.argv, self.out = argv, out

    def wait(self, timeout: float = 30) -> subprocess.CompletedProcess:
        if self.out is None:
            return subprocess.CompletedProcess(self.argv, 127, "", f"{self.argv[0]}: not recorded")
        return subprocess.CompletedProcess(self.argv, 0, self.out, "")


class _Silent(CaptureSource):
    """A capture that never sees a frame (the record has none to give)."""

    def fileno(self) -> int:
        raise OSError("a recorded node has no live capture")

    def read(self):
        return []

    def close(self) -> None:
        pass


class RecordedNode(Node):
    kind = "recorded"

    def __init__(self, name: str, record: Record) -> None:
        self.name = name
        self.rec = record

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        raise OSError(f"{self.name} is a recorded node: it runs no programs")

    def start(self, argv: Sequence[str], input: str | None = None):
        argv = list(argv)
        return _Done(argv, self.rec.outputs.get(tuple(argv)))

    def links(self) -> dict[str, LinkInfo]:
        return dict(self.rec.links)

    def routes(self, table: int = 254, family: int = 4) -> list[RouteInfo]:
        return [r for r in self.rec.routes if r.table == table and r.family == family]

    def route_get(self, dst: str, src: str | None = None, iif: str | None = None) -> RouteLookup:
        return self.rec.lookups.get((dst, src, iif)) or self.rec.lookups.get((dst, None, None)) \
            or RouteLookup(False, error="not recorded")

    def neighbours(self, family: int = 4) -> list[tuple[str, str, str]]:
        return [n for n in self.rec.neighbours if (":" in n[1]) == (family == 6)]

    def sysctls(self, keys: Sequence[str]) -> dict[str, str]:
        return {k: self.rec.sysctl.get(k, "") for k in keys}

    def conntrack(self, src: str, dst: str, ident: int | None = None) -> list[tuple[str, str, str, str]]:
        return []

    def wg(self) -> list[WgIface]:
        return list(self.rec.wg)

    def wg_soon(self):
        return self.wg

    def wg_ifaces(self) -> list[str]:
        return [w.name for w in self.rec.wg]

    def open_capture(self) -> CaptureSource:
        return _Silent()

    def source_route(self, dst: str) -> tuple[RouteLookup, str]:
        r = self.route_get(dst)
        return r, ("" if r.ok else r.error)

    def send_raw(self, packet: bytes, dst: str) -> tuple[float, str]:
        return 0.0, "a recorded node sends nothing"


def from_facts(facts, routes: dict[tuple, RouteLookup], saves: dict[str, str] | None = None) -> RecordedNode:
    """A recorded node from what a diagnosis kept of it (``diagnose.facts.NodeFacts`` and the
    context's route lookups); ``saves``: argv -> output for the firewall reads."""
    lookups = {(dst, src, iif): r for (node, dst, src, iif), r in routes.items() if node == facts.node}
    rec = Record(dict(facts.links), list(facts.routes), list(facts.neigh), dict(facts.sysctl), list(facts.wg),
                 lookups, {tuple(k.split()): v for k, v in (saves or {}).items()})
    return RecordedNode(facts.node, rec)
