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
    iface: str
    hatype: int


def _open_sniffers(nodes: list[NodeHandle]) -> tuple[list[_Sniffer], dict[str, list[str]]]:
    sniffers, ifaces = [], {}
    for h in nodes:
        with h.iproute() as ipr:
            links = ipr.get_links()
        names = []
        for l in links:
            name = l.get_attr("IFLA_IFNAME")
            # Bridge ports repeat what the bridge itself shows at L3; lo is never on the path.
            if name == "lo" or l.get_attr("IFLA_MASTER"):
                continue
            with h.inside():
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((name, ETH_P_ALL))
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.setblocking(False)
            sniffers.append(_Sniffer(s, h.name, name, l["ifi_type"]))
            names.append(name)
        ifaces[h.name] = names
    return sniffers, ifaces


def _route_get(h: NodeHandle, dst: str) -> tuple[dict, str]:
    """The source node's own route lookup for the probe: (route facts, error text)."""
    try:
        with h.iproute() as ipr:
            r = ipr.route("get", dst=dst)[0]
            oif = r.get_attr("RTA_OIF")
            dev = ipr.get_links(oif)[0].get_attr("IFLA_IFNAME") if oif else None
        return {"dev": dev, "via": r.get_attr("RTA_GATEWAY"), "src": r.get_attr("RTA_PREFSRC")}, ""
    except Exception as e:           # pyroute2 raises NetlinkError(errno)
        code = getattr(e, "code", 0)
        return {}, os.strerror(code) if code else str(e)


def observe(nodes: list[NodeHandle], probe: Probe, quiet: float = 0.3, timeout: float = 3.0,
            keep_raw: bool = False) -> Observation:
    src = next(h for h in nodes if h.name == probe.src_node)
    obs = Observation(probe)
    obs.route, err = _route_get(src, probe.dst)
    sniffers, obs.ifaces = _open_sniffers(nodes)
    try:
        if err:
            obs.send_error, obs.ended = err, "send-error"
            return obs
        probe.src_ip = obs.route.get("src") or ""
        data = probe.build()
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


def _loop(sniffers: list[_Sniffer], obs: Observation, quiet: float, timeout: float,
          keep_raw: bool) -> None:
    probe = obs.probe
    by_fd = {s.sock.fileno(): s for s in sniffers}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    start = last_move = time.monotonic()
    handshake_grace = False
    while True:
        now = time.monotonic()
        if now - start > timeout:
            obs.ended = "timeout"
            return
        if now - last_move > quiet:
            obs.ended = "quiet"
            return
        for fd, _ in poller.poll(20):
            sn = by_fd[fd]
            while True:
                try:
                    frame, anc, _, addr = sn.sock.recvmsg(65535, 64)
                except BlockingIOError:
                    break
                except OSError:      # the interface went down under us: nothing more to read there
                    poller.unregister(fd)
                    break
                ip = ip_payload(frame, sn.hatype)
                if ip is None:
                    continue
                p = parse_ip(ip)
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
                obs.captures.append(Capture(ts, sn.node, sn.iface, direction, p,
                                            frame if keep_raw else b"",
                                            101 if sn.hatype == 65534 else 1))
                if role is not None or (p.wg_type == 4 and p.wg_len > 32):
                    last_move = time.monotonic()
                elif p.wg_type == 1 and not handshake_grace:
                    # A handshake is under way; data waits for it, so give it time once.
                    handshake_grace = True
                    last_move = time.monotonic() + quiet
                if sn.node == probe.src_node and direction == "in" and role in ("reply", "error"):
                    if role == "reply" or p.dst == probe.src_ip:
                        obs.ended = role
                        return
