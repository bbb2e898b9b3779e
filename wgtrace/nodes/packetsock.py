"""Capture on a lab node: one unbound AF_PACKET socket sees every interface of its namespace.

The kernel names the interface of each frame, so one socket per node is enough. Sockets
bound per interface would cost a synchronize_net() each on bind and on close (~7 ms apiece,
most of a trace's time). Frames carry the kernel's timestamp (SO_TIMESTAMPNS), so frames
of different nodes sort correctly.
"""
from __future__ import annotations

import socket
import struct
import time

from .base import CaptureSource, Frame

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4


def _stamp(anc) -> int:
    """The kernel's timestamp of a frame, in nanoseconds."""
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", cdata[:16])
            return sec * 1_000_000_000 + nsec
    return time.time_ns()


class PacketSocket(CaptureSource):
    """Open it inside the node's namespace (the socket stays there)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.names = [n for _, n in socket.if_nameindex()]
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def ifaces(self) -> list[str]:
        return self.names

    def read(self) -> list[Frame] | None:
        frames = []
        while True:
            try:
                data, anc, _, addr = self.sock.recvmsg(65535, 64)
            except BlockingIOError:
                return frames
            except OSError:          # e.g. the interface went down under us
                return None if not frames else frames
            ns = _stamp(anc)
            frames.append(Frame(ns / 1e9, addr[0], addr[2] == PACKET_OUTGOING, addr[3], data,
                                addr[2] == PACKET_OTHERHOST, ns))

    def close(self) -> None:
        self.sock.close()


def wait_for_timestamps(source: PacketSocket, limit: float = 0.5) -> None:
    """Wait until the kernel stamps frames as they pass, not when we read them (call inside the
    node's namespace).

    The first socket asking for timestamps turns them on through deferred work; until it has
    run, frames are stamped at recvmsg() time and hops on different nodes would sort wrongly.
    Test it: send a datagram over the node's lo, read it 2 ms later, and look at its stamp.
    Frames read meanwhile are dropped: nothing has been sent yet."""
    mark = b"wgtrace-timestamp-check"
    deadline = time.monotonic() + limit
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        while time.monotonic() < deadline:
            sent = time.time()
            try:
                u.sendto(mark, ("127.0.0.1", 9))
            except OSError:          # the node's own firewall refuses: go on without the check
                return
            time.sleep(0.002)
            for f in source.read() or []:
                if f.iface == "lo" and f.data.endswith(mark) and f.ts < sent + 0.001:
                    return
    finally:
        u.close()
