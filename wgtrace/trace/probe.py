"""What a probe is and how to recognise its packets anywhere on the path, even after NAT.

Marks that survive every hop: ICMP carries a payload with a random nonce (echoed back
by the destination, kept through NAT); a TCP SYN carries a random sequence number
(answered as ack+1); UDP carries the nonce in its payload. The family follows the destination
address: ICMPv6 echo, TCP and UDP over IPv6 carry the same marks.
"""
from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

from .packets import Pkt

MARK = b"wgtrace:"


@dataclass
class Probe:
    src_node: str
    dst: str               # IP address
    kind: str = "icmp"     # icmp | tcp | udp
    port: int = 0
    size: int = 0          # total IP length wanted (0: default); DF is set when given (IPv6: always)
    nonce: int = 0
    ident: int = 0         # ICMP id / TCP and UDP source port
    src_ip: str = ""

    @classmethod
    def new(cls, src_node: str, dst: str, kind: str = "icmp", port: int = 0, size: int = 0) -> "Probe":
        r = int.from_bytes(os.urandom(6), "big")
        nonce, ident = r >> 16, r & 0xFFFF
        if kind != "icmp":
            ident = 40000 + ident % 20000
        return cls(src_node, dst, kind, port, size, nonce, ident)

    @property
    def marker(self) -> bytes:
        return MARK + b"%08x" % self.nonce

    @property
    def family(self) -> int:
        return 6 if ":" in self.dst else 4

    @property
    def header_len(self) -> int:
        return 40 if self.family == 6 else 20

    @property
    def smallest(self) -> int:
        """The smallest ``size`` that holds the headers and the mark."""
        return self.header_len + (20 if self.kind == "tcp" else 8 + len(self.marker))

    def to_json(self) -> dict:
        return {"kind": self.kind, "port": self.port or None, "size": self.size or None,
                "src_ip": self.src_ip or None, "dst_ip": self.dst}

    def build(self) -> bytes:
        """The probe's bytes: an IPv4 or IPv6 header and ICMP echo, TCP SYN or UDP, as scapy builds
        them (tests/unit check them byte for byte against scapy). Built with struct here because
        importing scapy costs 0.15 s, a third of a whole trace, and reads the host's routes."""
        if self.family == 6:
            return self._build6()
        flags = 0x4000 if self.size else 0                          # DF when a size is asked for
        l4, proto = self._l4(8, 20, self._pseudo)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, flags, 64, proto, 0,
                         socket.inet_aton(self.src_ip or "0.0.0.0"), socket.inet_aton(self.dst))
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        return ip + l4

    def _pseudo(self, proto: int, length: int) -> bytes:
        return socket.inet_aton(self.src_ip or "0.0.0.0") + socket.inet_aton(self.dst) + \
            struct.pack("!BBH", 0, proto, length)

    def _l4(self, echo_type: int, extra: int, pseudo) -> tuple[bytes, int]:
        """The transport part, ``extra`` bytes of headers before it (IP, and for ICMP its own 8)."""
        if self.kind == "icmp":
            pad = max(0, (self.size or extra + 64) - extra - 8 - len(self.marker))
            l4 = struct.pack("!BBHHH", echo_type, 0, 0, self.ident, 1) + self.marker + b"\0" * pad
            proto = 1 if echo_type == 8 else 58
            csum = _checksum((pseudo(proto, len(l4)) if proto == 58 else b"") + l4)
            return l4[:2] + struct.pack("!H", csum) + l4[4:], proto
        if self.kind == "tcp":
            body = b"\0" * max(0, self.size - extra - 20) if self.size else b""
            l4 = struct.pack("!HHIIBBHHH", self.ident, self.port, self.nonce, 0, 5 << 4, 0x02, 64240, 0, 0) + body
            return l4[:16] + struct.pack("!H", _checksum(pseudo(6, len(l4)) + l4)) + l4[18:], 6
        pad = max(0, (self.size or extra + 8 + len(self.marker)) - extra - 8 - len(self.marker))
        body = self.marker + b"\0" * pad
        l4 = struct.pack("!HHHH", self.ident, self.port, 8 + len(body), 0) + body
        csum = _checksum(pseudo(17, len(l4)) + l4) or 0xFFFF
        return l4[:6] + struct.pack("!H", csum) + l4[8:], 17

    def _build6(self) -> bytes:
        """IPv6 (hop limit 64, no extension header) and ICMPv6 echo, TCP SYN or UDP."""
        src = socket.inet_pton(socket.AF_INET6, self.src_ip or "::")
        dst = socket.inet_pton(socket.AF_INET6, self.dst)

        def pseudo(proto: int, length: int) -> bytes:
            return src + dst + struct.pack("!I3xB", length, proto)
        l4, proto = self._l4(128, 40, pseudo)
        return struct.pack("!IHBB", 6 << 28, len(l4), proto, 64) + src + dst + l4

    # --- recognising its packets ---------------------------------------------------
    def role(self, p: Pkt) -> str | None:
        """'request', 'reply', 'error' (an ICMP error about the probe), 'redirect', or None."""
        if self.kind == "icmp" and (p.echo_request or p.echo_reply):
            if p.payload.startswith(self.marker):
                return "request" if p.echo_request else "reply"
            return None
        if self.kind == "tcp" and p.proto == 6:
            if p.tcp_flags & 0x02 and not p.tcp_flags & 0x10 and p.tcp_seq == self.nonce:
                return "request"
            if p.tcp_flags & 0x10 and p.tcp_ack == (self.nonce + 1) & 0xFFFFFFFF:
                return "reply"
            return None
        if self.kind == "udp" and p.proto == 17:
            if p.payload.startswith(self.marker):
                return "request"
            if p.sport == self.port and (p.dport == self.ident or p.src == self.dst):
                return "reply"            # the service itself answered
            return None
        if p.icmp and p.inner is not None and (p.icmp_error or p.redirect) and self._quotes_me(p.inner):
            return "redirect" if p.redirect else "error"
        return None

    def _quotes_me(self, q: Pkt) -> bool:
        if self.kind == "icmp":
            # NAT may have changed the quoted id on the far side of a router; the destination stays.
            return q.echo_request and (q.icmp_id == self.ident or q.dst == self.dst)
        if self.kind == "tcp":
            return q.proto == 6 and q.tcp_seq == self.nonce
        return q.proto == 17 and q.dport == self.port and q.dst == self.dst or \
            (q.proto == 17 and q.sport == self.ident)


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
