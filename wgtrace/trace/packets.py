"""Decode the captured bytes we care about (IPv4, ICMP, TCP, UDP, WireGuard) into plain records,
and describe them the way ``tcpdump -nn`` does.

Hand-decoded on purpose: a trace reads thousands of frames and needs only a few header
fields; scapy (used to build the probe) would cost far more per frame and at import.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ARPHRD_ETHER = 1
ARPHRD_NONE = 65534        # tun devices (wireguard-go's wg0): raw IP, no link header

ICMP_NAMES = {0: "echo reply", 8: "echo request", 3: "unreachable", 5: "redirect",
              11: "time exceeded"}
UNREACH = {0: "net", 1: "host", 2: "protocol", 3: "port", 4: "need to frag", 9: "net prohibited",
           10: "host prohibited", 13: "admin prohibited"}
WG_TYPES = {1: "handshake initiation", 2: "handshake response", 3: "cookie reply", 4: "data"}


@dataclass
class Pkt:
    src: str
    dst: str
    proto: int                      # 1 icmp, 6 tcp, 17 udp
    length: int                     # IP total length
    ident: int                      # IP id
    df: bool
    sport: int = 0
    dport: int = 0
    icmp_type: int = -1
    icmp_code: int = -1
    icmp_id: int = -1
    icmp_seq: int = -1
    tcp_flags: int = 0
    tcp_seq: int = 0
    tcp_ack: int = 0
    payload: bytes = b""
    inner: "Pkt | None" = None      # the original header quoted inside an ICMP error
    mtu: int = 0                    # ICMP "need to frag": next-hop MTU
    gateway: str = ""               # ICMP redirect: the better gateway
    wg_type: int = 0                # WireGuard message type carried in UDP, 0 if none
    wg_receiver: int = 0
    wg_counter: int = 0
    wg_len: int = 0                 # WireGuard message length (data: 32 + padded inner)


def _ip(b: bytes) -> str:
    return "%d.%d.%d.%d" % tuple(b)


def ip_payload(frame: bytes, hatype: int) -> bytes | None:
    """The IPv4 packet inside a captured frame, or None if it is something else."""
    if hatype == ARPHRD_NONE:
        return frame if frame[:1] and frame[0] >> 4 == 4 else None
    if hatype == ARPHRD_ETHER and len(frame) >= 34:
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == ETH_P_IP:
            return frame[14:]
    return None


def arp_of(frame: bytes, hatype: int) -> tuple[int, str, str] | None:
    """(operation 1 request / 2 reply, sender IP, target IP) of an Ethernet ARP frame, else None."""
    if hatype != ARPHRD_ETHER or len(frame) < 42 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_ARP:
        return None
    op = struct.unpack_from("!H", frame, 20)[0]
    return op, _ip(frame[28:32]), _ip(frame[38:42])


def parse_ip(data: bytes, quoted: bool = False) -> Pkt | None:
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    total, ident, frag = struct.unpack_from("!HHH", data, 2)
    proto = data[9]
    p = Pkt(_ip(data[12:16]), _ip(data[16:20]), proto, total, ident, bool(frag & 0x4000))
    body = data[ihl:total] if not quoted else data[ihl:]
    if proto == 1 and len(body) >= 8:
        p.icmp_type, p.icmp_code = body[0], body[1]
        if p.icmp_type in (0, 8):
            p.icmp_id, p.icmp_seq = struct.unpack_from("!HH", body, 4)
            p.payload = bytes(body[8:])
        elif p.icmp_type in (3, 5, 11) and not quoted:
            if p.icmp_type == 3 and p.icmp_code == 4:
                p.mtu = struct.unpack_from("!H", body, 6)[0]
            if p.icmp_type == 5:
                p.gateway = _ip(body[4:8])
            p.inner = parse_ip(bytes(body[8:]), quoted=True)
    elif proto == 6 and len(body) >= 14:
        p.sport, p.dport, p.tcp_seq, p.tcp_ack = struct.unpack_from("!HHII", body, 0)
        if len(body) >= 14:
            p.tcp_flags = body[13]
        off = (body[12] >> 4) * 4 if len(body) >= 13 else 20
        p.payload = bytes(body[off:])
    elif proto == 17 and len(body) >= 8:
        p.sport, p.dport = struct.unpack_from("!HH", body, 0)
        p.payload = bytes(body[8:])
        _wireguard(p)
    return p


def _wireguard(p: Pkt) -> None:
    """Recognise WireGuard messages by their fixed sizes and type byte (the header is cleartext)."""
    d = p.payload
    if len(d) < 4 or d[1:4] != b"\0\0\0":
        return
    t = d[0]
    if (t == 1 and len(d) == 148) or (t == 2 and len(d) == 92) or (t == 3 and len(d) == 64):
        p.wg_type, p.wg_len = t, len(d)
    elif t == 4 and len(d) >= 32:     # padded to 16, or less when the MTU caps the padding
        p.wg_type, p.wg_len = t, len(d)
        p.wg_receiver, p.wg_counter = struct.unpack_from("<IQ", d, 4)


def wg_carries(wg_len: int, inner_len: int) -> bool:
    """Could a WireGuard data message of this length carry an inner packet of that length?
    (16 bytes header, the packet padded to a multiple of 16 but never past the MTU, 16 bytes tag.)"""
    padding = wg_len - 32 - inner_len
    return 0 <= padding < 16


TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
TCP_FLAGS = [(TCP_SYN, "S"), (TCP_FIN, "F"), (TCP_RST, "R"), (TCP_PSH, "P"), (TCP_ACK, ".")]


def summary(p: Pkt) -> str:
    """One line in the style of ``tcpdump -nn``."""
    if p.proto == 1:
        name = ICMP_NAMES.get(p.icmp_type, f"type {p.icmp_type}")
        if p.icmp_type in (0, 8):
            return (f"IP {p.src} > {p.dst}: ICMP {name}, id {p.icmp_id}, seq {p.icmp_seq}, "
                    f"length {p.length - 20}")
        what = name
        if p.icmp_type == 3:
            what = f"{UNREACH.get(p.icmp_code, p.icmp_code)} unreachable"
            if p.icmp_code == 4:
                what = f"unreachable - need to frag (mtu {p.mtu})"
        elif p.icmp_type == 5:
            what = f"redirect to host {p.gateway}"
        quoted = f" for {p.inner.src} > {p.inner.dst}" if p.inner else ""
        return f"IP {p.src} > {p.dst}: ICMP {what}{quoted}, length {p.length - 20}"
    if p.proto == 6:
        flags = "".join(c for bit, c in TCP_FLAGS if p.tcp_flags & bit) or "none"
        text = f"IP {p.src}.{p.sport} > {p.dst}.{p.dport}: Flags [{flags}], seq {p.tcp_seq}"
        if p.tcp_flags & 0x10:
            text += f", ack {p.tcp_ack}"
        return text + f", length {len(p.payload)}"
    if p.proto == 17:
        text = f"IP {p.src}.{p.sport} > {p.dst}.{p.dport}: UDP, length {len(p.payload)}"
        if p.wg_type:
            text += f" (WireGuard {WG_TYPES[p.wg_type]}"
            if p.wg_type == 4:
                text += f", receiver {p.wg_receiver:#x}, counter {p.wg_counter}"
            text += ")"
        return text
    return f"IP {p.src} > {p.dst}: proto {p.proto}, length {p.length}"
