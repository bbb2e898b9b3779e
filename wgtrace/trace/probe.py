"""What a probe is and how to recognise its packets anywhere on the path, even after NAT.

Marks that survive every hop: ICMP carries a payload with a random nonce (echoed back
by the destination, kept through NAT); a TCP SYN carries a random sequence number
(answered as ack+1); UDP carries the nonce in its payload.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .packets import Pkt

MARK = b"wgtrace:"


@dataclass
class Probe:
    src_node: str
    dst: str               # IP address
    kind: str = "icmp"     # icmp | tcp | udp
    port: int = 0
    size: int = 0          # total IP length wanted (0: default); DF is set when given
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

    def to_json(self) -> dict:
        return {"kind": self.kind, "port": self.port or None, "size": self.size or None,
                "src_ip": self.src_ip or None, "dst_ip": self.dst}

    def build(self) -> bytes:
        """The probe's bytes, built with scapy (imported here only: it is slow to import)."""
        from scapy.layers.inet import ICMP, IP, TCP, UDP
        ip = IP(src=self.src_ip, dst=self.dst, ttl=64, flags="DF" if self.size else 0)
        if self.kind == "icmp":
            l4 = ICMP(type=8, id=self.ident, seq=1)
            pad = max(0, (self.size or 84) - 28 - len(self.marker))
            pkt = ip / l4 / (self.marker + b"\0" * pad)
        elif self.kind == "tcp":
            pkt = ip / TCP(sport=self.ident, dport=self.port, flags="S", seq=self.nonce, window=64240)
            if self.size:
                pkt = pkt / (b"\0" * max(0, self.size - 40))
        else:
            pad = max(0, (self.size or 28 + len(self.marker)) - 28 - len(self.marker))
            pkt = ip / UDP(sport=self.ident, dport=self.port) / (self.marker + b"\0" * pad)
        return bytes(pkt)

    # --- recognising its packets ---------------------------------------------------
    def role(self, p: Pkt) -> str | None:
        """'request', 'reply', 'error' (an ICMP error about the probe), 'redirect', or None."""
        if self.kind == "icmp" and p.proto == 1 and p.icmp_type in (0, 8):
            if p.payload.startswith(self.marker):
                return "request" if p.icmp_type == 8 else "reply"
            return None
        if self.kind == "tcp" and p.proto == 6:
            if p.tcp_flags & 0x02 and not p.tcp_flags & 0x10 and p.tcp_seq == self.nonce:
                return "request"
            if p.tcp_flags & 0x10 and p.tcp_ack == (self.nonce + 1) & 0xFFFFFFFF:
                return "reply"
            return None
        if self.kind == "udp" and p.proto == 17 and p.payload.startswith(self.marker):
            return "request"
        if p.proto == 1 and p.inner is not None and self._quotes_me(p.inner):
            return "redirect" if p.icmp_type == 5 else "error"
        return None

    def _quotes_me(self, q: Pkt) -> bool:
        if self.kind == "icmp":
            # NAT may have changed the quoted id on the far side of a router; the destination stays.
            return q.proto == 1 and q.icmp_type == 8 and (q.icmp_id == self.ident or q.dst == self.dst)
        if self.kind == "tcp":
            return q.proto == 6 and q.tcp_seq == self.nonce
        return q.proto == 17 and q.dport == self.port and q.dst == self.dst or \
            (q.proto == 17 and q.sport == self.ident)
