"""Send one probe from a node while capturing on every interface of the nodes given.

Each node opens its own capture (nodes/base.py: a packet socket in a lab namespace), all of
them read by one poll loop in this process: nothing is spawned per interface. Frames carry
the kernel's timestamps, so hops on different nodes sort correctly. Only the probe's own
packets (and WireGuard datagrams, which may carry it) are kept, as plain ``Capture`` records
for path.py to read.
"""
from __future__ import annotations

import select
import time
from dataclasses import dataclass, field

from ..errors import MissingTool
from ..nodes.base import CaptureSource, Frame, Node
from .packets import Pkt, arp_of, ip_payload, nd_of, parse_ip
from .probe import Probe


@dataclass
class Capture:
    ts: float
    node: str
    iface: str
    dir: str                  # "in" | "out"
    pkt: Pkt
    raw: bytes = b""          # the frame as captured (for pcapng)
    linktype: int = 1         # pcap link type: 1 Ethernet, 101 raw IP
    ts_ns: int = 0            # the kernel's timestamp, exact


@dataclass
class Observation:
    probe: Probe
    sent_ts: float = 0.0
    send_error: str = ""              # the kernel refused to send: "Network is unreachable"…
    route: dict = field(default_factory=dict)   # the source's route lookup for dst
    captures: list[Capture] = field(default_factory=list)
    ended: str = ""                   # reply | error | quiet | timeout | send-error
    ifaces: dict[str, list[str]] = field(default_factory=dict)   # node -> captured interfaces
    other: dict[str, int] = field(default_factory=dict)   # node -> packets seen that were not the probe's
    arp: list[tuple[float, str, str, str, int, str, str]] = field(default_factory=list)
    # neighbour discovery seen during the probe, ARP and NDP alike: (ts, node, iface, dir,
    # op 1 asks / 2 answers, sender ip, target ip), at most ARP_MAX


ARP_MAX = 200
# WireGuard datagrams of one node: a probe's path crosses a node a few times, request and reply.
# More than WG_MOVES no longer keep the probe waiting, more than WG_KEPT are only counted (a
# routing loop of a tunnel into itself, a busy link): the wait and the memory stay bounded.
WG_MOVES = 8
WG_KEPT = 200

@dataclass
class _Tap:
    source: CaptureSource
    node: str
    skip: set[str]             # interfaces not to record (lo, bridge ports)


def observe(nodes: list[Node], probe: Probe, quiet: float = 0.25, timeout: float = 3.0,
            keep_raw: bool = False, skip_ifaces: dict[str, set[str]] | None = None) -> Observation:
    """``skip_ifaces``: per node, interfaces not to record (bridge ports: the bridge shows it)."""
    src = next(h for h in nodes if h.name == probe.src_node)
    obs = Observation(probe)
    route, err = src.source_route(probe.dst)
    obs.route = {"dev": route.dev, "via": route.via, "src": route.prefsrc} if route.ok else {}
    taps: list[_Tap] = []
    try:
        for h in nodes:
            t = _Tap(h.open_capture(), h.name, {"lo"} | (skip_ifaces or {}).get(h.name, set()))
            taps.append(t)
            obs.ifaces[h.name] = [n for n in t.source.ifaces() if n not in t.skip]
        if err:
            obs.send_error, obs.ended = err, "send-error"
            return obs
        probe.src_ip = route.prefsrc or ""
        data = probe.build()
        for h, t in zip(nodes, taps):
            h.await_capture(t.source)
        mine = next(t.source for t in taps if t.node == src.name)
        if mine.blind():          # a probe whose start nobody sees cannot be followed
            raise MissingTool(f"{src.name} cannot send the probe: its own packets must be seen, and "
                              f"{mine.blind()[0].lower() + mine.blind()[1:]}")
        src.prepare_capture(mine)
        obs.sent_ts, err = src.send_raw(data, probe.dst)
        if err:
            obs.send_error, obs.ended = err, "send-error"
            return obs
        _loop(taps, obs, quiet, timeout, keep_raw, max(h.capture_lag() for h in nodes))
        return obs
    finally:
        close_all([t.source for t in taps])


def close_all(sources: list[CaptureSource]) -> None:
    """Close captures side by side: each packet socket waits out an RCU grace period when it
    closes (~17 ms here), one after another that is most of a trace; together, one grace period.
    The threads are joined before returning: nothing forks while they run."""
    import threading
    if len(sources) < 2:
        for s in sources:
            s.close()
        return
    threads = [threading.Thread(target=s.close) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _loop(taps: list[_Tap], obs: Observation, quiet: float, timeout: float, keep_raw: bool,
          lag: float = 0.0) -> None:
    """``lag``: how late frames of the slowest capture may come (remote ones); the probe waits that
    much longer for news, and after the answer has come back, for the frames still on their way."""
    by_fd = {t.source.fileno(): t for t in taps}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    start = time.monotonic()
    state = {"handshake_grace": False, "last_move": start, "done": "", "wg": {}}
    until = None                 # the answer is back: read until then, for the others' frames
    try:
        while True:
            now = time.monotonic()
            if until is not None and now >= until:
                obs.ended = state["done"]
                return
            if now - start > timeout + lag:
                obs.ended = "timeout"
                return
            if now - state["last_move"] > quiet + lag:
                obs.ended = "quiet"
                return
            for fd, _ in poller.poll(20):
                if not _drain(by_fd[fd], obs, keep_raw, state, quiet):
                    poller.unregister(fd)
            if state["done"] and until is None:
                if not lag:
                    obs.ended = state["done"]
                    return
                until = time.monotonic() + lag
    finally:
        # Frames of other nodes may still wait in their queues: read them all.
        for t in taps:
            _drain(t, obs, keep_raw, state, quiet)


def _drain(t: _Tap, obs: Observation, keep_raw: bool, state: dict, quiet: float) -> bool:
    """Keep every queued frame of one node that concerns the probe; False if the source is gone."""
    frames = t.source.read()
    if frames is None:
        return False
    for f in frames:
        _keep(t, f, obs, keep_raw, state, quiet)
    return True


def _keep(t: _Tap, f: Frame, obs: Observation, keep_raw: bool, state: dict, quiet: float) -> None:
    probe = obs.probe
    if f.iface in t.skip or f.otherhost:          # flooded to us, not for us
        return
    ip = ip_payload(f.data, f.hatype)
    p = parse_ip(ip) if ip is not None else None
    if p is None:
        arp = arp_of(f.data, f.hatype) if ip is None else None
        if arp and len(obs.arp) < ARP_MAX:
            obs.arp.append((f.ts, t.node, f.iface, "out" if f.outgoing else "in", *arp))
        return
    role = probe.role(p)
    if role is None and not p.wg_type:
        nd = nd_of(p)
        if nd is not None:
            if len(obs.arp) < ARP_MAX:
                obs.arp.append((f.ts, t.node, f.iface, "out" if f.outgoing else "in", *nd))
        elif not (p.icmp and p.family == 6 and p.icmp_type >= 130):
            # IPv6's own chatter (router and multicast listener messages) is nobody's traffic
            obs.other[t.node] = obs.other.get(t.node, 0) + 1
        return
    seen = 0
    if role is None:
        seen = state["wg"][t.node] = state["wg"].get(t.node, 0) + 1
        if seen > WG_KEPT:
            obs.other[t.node] = obs.other.get(t.node, 0) + 1
            return
    direction = "out" if f.outgoing else "in"
    obs.captures.append(Capture(f.ts, t.node, f.iface, direction, p, f.data if keep_raw else b"",
                                101 if f.hatype == 65534 else 1, f.ts_ns))
    if role is not None or (p.wg_type == 4 and p.wg_len > 32 and seen <= WG_MOVES):
        state["last_move"] = time.monotonic()
    elif p.wg_type == 1 and not state["handshake_grace"]:
        # A handshake is under way; data waits for it, so give it time once.
        state["handshake_grace"] = True
        state["last_move"] = time.monotonic() + quiet
    if t.node == probe.src_node and direction == "in" and role in ("reply", "error"):
        if role == "reply" or p.dst == probe.src_ip:
            state["done"] = state["done"] or role
