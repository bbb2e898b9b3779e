"""What wgtrace can do with a node, whatever the node is: the one seam between the tool and machines.

A node runs commands (``start``/``run``/``popen``), reads its own state as plain records
(links, routes, route lookups, sysctls, firewall, WireGuard, connection tracking), sends one
raw probe and captures frames. Two kinds stand behind it: a network namespace of a lab
(nodes/netns.py) and a real host over SSH (nodes/ssh.py). Trace, diagnose and status only ever
hold a ``Node``; they never know which kind it is. Where the kinds differ in cost or in what
they allow, the node says so itself (``wg_soon``, ``route_table``, ``ask_before_changes``).

Addresses of both families: reads of routes and neighbours take a ``family`` (4 or 6), lookups
and sends take it from the address they are given.
"""
from __future__ import annotations

import abc
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Sequence

from .wgstate import WgIface, parse_dump


@dataclass
class LinkInfo:
    name: str
    up: bool
    mtu: int
    addresses: list[str] = field(default_factory=list)    # "10.0.0.1/24", "fd00::1/64" (no link-local)
    index: int = 0
    kind: str = ""                 # veth, bridge, wireguard, tun… ("" when unknown)
    master: str | None = None      # the bridge it is a port of


@dataclass
class RouteInfo:
    dst: str                       # "default" or a CIDR
    via: str | None
    dev: str | None
    proto: str = ""                # kernel (connected), boot, static…
    table: int = 254
    family: int = 4


@dataclass
class RouteLookup:
    """The kernel's answer to ``ip route get``: where a packet would go, or why it cannot."""
    ok: bool
    dev: str | None = None
    via: str | None = None
    type: str = ""                 # unicast, local, unreachable, blackhole…
    error: str = ""
    prefsrc: str | None = None


@dataclass
class Frame:
    """One frame as the kernel delivered it to a capture."""
    ts: float
    iface: str
    outgoing: bool
    hatype: int                    # ARPHRD_*: 1 Ethernet, 65534 none (tun)
    data: bytes
    otherhost: bool = False        # flooded to us, addressed to another host
    ts_ns: int = 0                 # the same time, exact (nanoseconds)


class Job:
    """A command running on a node. Output goes to files, not pipes: a daemon the command
    starts (wireguard-go, sshd) may keep its stdout open long after the command ends."""

    def __init__(self, proc_factory, argv: list[str], input: str | None) -> None:
        self.argv = argv
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.input = input
        self.proc = proc_factory(stdout=self.out, stderr=self.err,
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


class CaptureSource(abc.ABC):
    """Frames of every interface of one node, readable without blocking; ``fileno`` for poll."""

    @abc.abstractmethod
    def fileno(self) -> int: ...

    @abc.abstractmethod
    def read(self) -> list[Frame] | None:
        """Every frame queued now ([] if none); None when the source is gone."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def ifaces(self) -> list[str]:
        return []

    def blind(self) -> str:
        """Why this source sees nothing (a capture that never started), as one sentence; "" when it sees."""
        return ""


class Node(abc.ABC):
    name: str
    kind: str = ""

    # --- processes --------------------------------------------------------------------
    @abc.abstractmethod
    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        """A process on the node, with the caller's choice of streams (interactive use)."""

    def foreground(self, argv: Sequence[str], env: dict | None = None) -> int:
        """Run interactively: the child owns the terminal and gets Ctrl-C (a handler, unlike
        SIG_IGN, is not inherited across exec); we wait. Exit status as a shell gives it:
        127 not found, 128+N killed by signal N."""
        import signal
        old = signal.signal(signal.SIGINT, lambda *_: None)
        try:
            p = self.popen(list(argv), env=env or {})      # FileNotFoundError: no such command
            code = p.wait()
            return 128 - code if code < 0 else code
        finally:
            signal.signal(signal.SIGINT, old)

    def start(self, argv: Sequence[str], input: str | None = None) -> Job:
        """Start a command without waiting (several nodes can work at once)."""
        argv = list(argv)
        return Job(lambda **kw: self.popen(argv, start_new_session=True, **kw), argv, input)

    def run(self, argv: Sequence[str], timeout: float = 30, input: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
        res = self.start(argv, input=input).wait(timeout)
        if check:
            res.check_returncode()
        return res

    def close(self) -> None:
        """Let go of what reading the node holds open (a netlink socket, a connection)."""

    def ask_before_changes(self, confirm) -> None:
        """A node that is someone's machine runs a change only if ``confirm(node, argv)`` says
        yes; a lab's nodes are the lab's to change, so by default nothing is asked."""

    # --- state ----------------------------------------------------------------------------
    @abc.abstractmethod
    def links(self) -> dict[str, LinkInfo]: ...

    @abc.abstractmethod
    def routes(self, table: int = 254, family: int = 4) -> list[RouteInfo]:
        """A routing table of one family (the main one by default)."""

    def route_table(self, family: int = 4) -> list[tuple[str, str | None, str | None]]:
        """The main table as (CIDR or "default", gateway, device), as cheaply as the node can
        (a trace's path prediction reads it on every node it walks)."""
        return [(r.dst, r.via, r.dev) for r in self.routes(254, family)]

    @abc.abstractmethod
    def route_get(self, dst: str, src: str | None = None, iif: str | None = None) -> RouteLookup:
        """The node's route lookup; for a forwarded packet give its source and input interface."""

    def route_get_soon(self, dst: str, src: str | None = None, iif: str | None = None):
        """Start a route lookup and return the call that finishes it, so that many are asked side by
        side (a node that answers at once answers now)."""
        r = self.route_get(dst, src, iif)
        return lambda: r

    @abc.abstractmethod
    def neighbours(self, family: int = 4) -> list[tuple[str, str, str]]:
        """The ARP (4) or NDP (6) table: (iface, ip, state), state REACHABLE, STALE, INCOMPLETE, FAILED…"""

    @abc.abstractmethod
    def sysctls(self, keys: Sequence[str]) -> dict[str, str]:
        """net.* sysctls as the node sees them ("" for a key that does not exist)."""

    @abc.abstractmethod
    def conntrack(self, src: str, dst: str, ident: int | None = None) -> list[tuple[str, str, str, str]]:
        """Connection tracking entries for src -> dst: (orig src, orig dst, reply src, reply dst);
        ``ident``: only the flow with this ICMP id or source port (the probe's, not older ones)."""

    def wg_ifaces(self) -> list[str]:
        """Names of the node's WireGuard interfaces, kernel or userspace, whatever they are called."""
        r = self.run(["wg", "show", "interfaces"], timeout=5)
        return r.stdout.split() if r.returncode == 0 else []

    def wg(self) -> list[WgIface]:
        r = self.run(["wg", "show", "all", "dump"], timeout=5)
        return parse_dump(r.stdout) if r.returncode == 0 else []

    def wg_soon(self):
        """Start reading WireGuard and return the call that finishes it, so that many nodes are
        read side by side (a node that reads it in process just reads it then)."""
        try:
            job = self.start(["wg", "show", "all", "dump"])
        except Exception:         # OSError, or SubprocessError from a node that is gone
            return lambda: []

        def done() -> list[WgIface]:
            r = job.wait(10)
            return parse_dump(r.stdout) if r.returncode == 0 else []
        return done

    # --- the probe ------------------------------------------------------------------------
    @abc.abstractmethod
    def open_capture(self) -> CaptureSource: ...

    @abc.abstractmethod
    def source_route(self, dst: str) -> tuple[RouteLookup, str]:
        """(the route the node's own packets to ``dst`` take, with the source address the kernel
        picks as ``prefsrc``; an error text when there is none)."""

    @abc.abstractmethod
    def send_raw(self, packet: bytes, dst: str) -> tuple[float, str]:
        """Send one IP packet as built (the family of ``dst``); (time sent, error text or "")."""

    def prepare_capture(self, source: CaptureSource) -> None:
        """Called once on the probe's sender before the probe is sent, with its capture open."""

    def await_capture(self, source: CaptureSource) -> None:
        """Called on every watched node before the probe: return once its capture sees (a remote
        capture takes a moment to start)."""

    def capture_lag(self) -> float:
        """Seconds this node's frames may reach us after they happened (0: at once)."""
        return 0.0
