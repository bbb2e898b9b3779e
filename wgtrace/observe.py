"""Send one probe from a node while listening on every interface of every node.

One AF_PACKET socket per interface, each opened inside its node's namespace, all read
by one select loop in this process: nothing is spawned per interface. Frames are
timestamped by the kernel (SO_TIMESTAMPNS), so hops on different nodes sort correctly.
The result is plain records (``Capture``) for path.py to read.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field

from .node import NodeHandle
from .packets import ip_payload, parse_ip, Pkt
from .probe import Probe

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4


@dataclass
class Capture:
    ts: float
    node: str
    iface: str
    dir: str                  # "in" | "out"
    pkt: Pkt
    raw: bytes = b""          # the frame as captured (for pcap)
    linktype: int = 1         # pcap link type: 1 Ethernet, 101 raw IP


@dataclass
class Observation:
    probe: Probe
    sent_ts: float = 0.0
    send_error: str = ""              # the kernel refused to send: "Network is unreachable"…
    route: dict = field(default_factory=dict)   # src's route lookup for dst
    captures: list[Capture] = field(default_factory=list)
    ended: str = ""                   # reply | error | quiet | timeout | send-error
    ifaces: dict[str, list[str]] = field(default_factory=dict)   # node -> captured interfaces


@dataclass
class _Sniffer:
    sock: socket.socket
    node: str
    skip: set[str]             # interfaces not to record (lo, bridge ports)


def _open_sniffers(nodes: list[NodeHandle], skip_ifaces: dict[str, set[str]]
                   ) -> tuple[list[_Sniffer], dict[str, list[str]]]:
    """One unbound AF_PACKET socket per node sees every interface of that node (the kernel
    names the interface of each frame). Per-interface sockets would cost a synchronize_net()
    each on bind and on close: ~7 ms apiece, most of a trace's time."""
    sniffers, ifaces = [], {}
    for h in nodes:
        with h.inside():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            names = [n for _, n in socket.if_nameindex()]
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        s.setblocking(False)
        skip = {"lo"} | skip_ifaces.get(h.name, set())
        sniffers.append(_Sniffer(s, h.name, skip))
        ifaces[h.name] = [n for n in names if n not in skip]
    return sniffers, ifaces


def _route_get(h: NodeHandle, dst: str) -> tuple[dict, str]:
    """The source node's own route lookup for the probe: (facts, error text). The kernel picks the
    source address for a connected UDP socket; the route itself is read from /proc/net/route."""
    with h.inside():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((dst, 9))
            src = s.getsockname()[0]
        except OSError as e:
            return {}, os.strerror(e.errno or errno.EHOSTUNREACH)
        finally:
            s.close()
        with open("/proc/thread-self/net/route") as f:
            table = f.read().splitlines()[1:]
    best = None
    d = struct.unpack("<I", socket.inet_aton(dst))[0]
    for line in table:
        f = line.split()
        dev, net, gw, mask = f[0], int(f[1], 16), int(f[2], 16), int(f[7], 16)
        if d & mask == net and (best is None or mask.bit_count() > best[0]):
            best = (mask.bit_count(), dev, gw)
    via = socket.inet_ntoa(struct.pack("<I", best[2])) if best and best[2] else None
    return {"dev": best[1] if best else None, "via": via, "src": src}, ""


def observe(nodes: list[NodeHandle], probe: Probe, quiet: float = 0.25, timeout: float = 3.0,
            keep_raw: bool = False, skip_ifaces: dict[str, set[str]] | None = None) -> Observation:
    """``skip_ifaces``: per node, interfaces not to record (bridge ports: the bridge shows it)."""
    src = next(h for h in nodes if h.name == probe.src_node)
    obs = Observation(probe)
    obs.route, err = _route_get(src, probe.dst)
    sniffers, obs.ifaces = _open_sniffers(nodes, skip_ifaces or {})
    try:
        if err:
            obs.send_error, obs.ended = err, "send-error"
            return obs
        probe.src_ip = obs.route.get("src") or ""
        data = probe.build()
        _wait_for_timestamps(src, next(s for s in sniffers if s.node == src.name))
        with src.inside():
            tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        try:
            obs.sent_ts = time.time()
            tx.sendto(data, (probe.dst, 0))
        except OSError as e:
            obs.send_error, obs.ended = os.strerror(e.errno or errno.EIO), "send-error"
            return obs
        finally:
            tx.close()
        _loop(sniffers, obs, quiet, timeout, keep_raw)
        return obs
    finally:
        for s in sniffers:
            s.sock.close()


def _wait_for_timestamps(node: NodeHandle, sn: _Sniffer, limit: float = 0.5) -> None:
    """Wait until the kernel stamps frames as they pass, not when we read them.

    The first socket asking for timestamps turns them on through deferred work; until it has
    run, frames are stamped at recvmsg() time and hops on different nodes would sort wrongly.
    Test it: send a datagram over the node's lo, read it 2 ms later, and look at its stamp."""
    mark = b"wgtrace-timestamp-check"
    deadline = time.monotonic() + limit
    with node.inside():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        while time.monotonic() < deadline:
            sent = time.time()
            try:
                u.sendto(mark, ("127.0.0.1", 9))
            except OSError:          # the node's own firewall refuses: go on without the check
                return
            time.sleep(0.002)
            ok = False
            while True:
                try:
                    frame, anc, _, addr = sn.sock.recvmsg(65535, 64)
                except BlockingIOError:
                    break
                if addr[0] != "lo" or not frame.endswith(mark):
                    continue
                for level, typ, cdata in anc:
                    if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", cdata[:16])
                        ok = ok or (sec + nsec / 1e9) < sent + 0.001
            if ok:
                return
    finally:
        u.close()


def _loop(sniffers: list[_Sniffer], obs: Observation, quiet: float, timeout: float,
          keep_raw: bool) -> None:
    by_fd = {s.sock.fileno(): s for s in sniffers}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    start = last_move = time.monotonic()
    state = {"handshake_grace": False, "last_move": last_move, "done": ""}
    try:
        while True:
            now = time.monotonic()
            if now - start > timeout:
                obs.ended = "timeout"
                return
            if now - state["last_move"] > quiet:
                obs.ended = "quiet"
                return
            for fd, _ in poller.poll(20):
                if not _drain(by_fd[fd], obs, keep_raw, state, quiet):
                    poller.unregister(fd)
                if state["done"]:
                    obs.ended = state["done"]
                    return
    finally:
        # Frames of other nodes may still wait in their sockets' queues: read them all.
        for sn in sniffers:
            _drain(sn, obs, keep_raw, state, quiet)


def _drain(sn: _Sniffer, obs: Observation, keep_raw: bool, state: dict, quiet: float) -> bool:
    """Read every queued frame of one node; False if the socket is no longer usable."""
    probe = obs.probe
    while True:
        try:
            frame, anc, _, addr = sn.sock.recvmsg(65535, 64)
        except BlockingIOError:
            return True
        except OSError:          # e.g. the interface went down under us
            return False
        if addr[0] in sn.skip or addr[2] == PACKET_OTHERHOST:   # flooded to us, not for us
            continue
        ip = ip_payload(frame, addr[3])
        p = parse_ip(ip) if ip is not None else None
        if p is None:
            continue
        role = probe.role(p)
        if role is None and not p.wg_type:
            continue
        ts = time.time()
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", cdata[:16])
                ts = sec + nsec / 1e9
        direction = "out" if addr[2] == PACKET_OUTGOING else "in"
        obs.captures.append(Capture(ts, sn.node, addr[0], direction, p, frame if keep_raw else b"",
                                    101 if addr[3] == 65534 else 1))
        if role is not None or (p.wg_type == 4 and p.wg_len > 32):
            state["last_move"] = time.monotonic()
        elif p.wg_type == 1 and not state["handshake_grace"]:
            # A handshake is under way; data waits for it, so give it time once.
            state["handshake_grace"] = True
            state["last_move"] = time.monotonic() + quiet
        if sn.node == probe.src_node and direction == "in" and role in ("reply", "error"):
            if role == "reply" or p.dst == probe.src_ip:
                state["done"] = state["done"] or role
