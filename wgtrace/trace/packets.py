"""Decode the captured bytes we care about (IPv4 and IPv6, ICMP and ICMPv6, TCP, UDP, WireGuard)
into plain records, and describe them the way ``tcpdump -nn`` does.

Hand-decoded on purpose: a trace reads thousands of frames and needs only a few header
fields; scapy (used to build the probe) would cost far more per frame and at import.
IPv6 extension headers (hop-by-hop, routing, fragment, destination options, AH) are walked
to the transport header; a later fragment carries none. Neighbour evidence is ARP for IPv4 and
NDP (neighbour solicitation and advertisement, ICMPv6 135/136) for IPv6, one shape for both.
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ARPHRD_ETHER = 1
ARPHRD_NONE = 65534        # tun devices (wireguard-go's wg0): raw IP, no link header

ICMP_NAMES = {0: "echo reply", 8: "echo request", 3: "unreachable", 5: "redirect",
              11: "time exceeded"}
UNREACH = {0: "net", 1: "host", 2: "protocol", 3: "port", 4: "need to frag", 9: "net prohibited",
           10: "host prohibited", 13: "admin prohibited"}
WG_TYPES = {1: "handshake initiation", 2: "handshake response", 3: "cookie reply", 4: "data"}
ICMP6_NAMES = {128: "echo request", 129: "echo reply", 1: "destination unreachable", 2: "packet too big",
               3: "time exceeded in-transit", 4: "parameter problem", 135: "neighbor solicitation",
               136: "neighbor advertisement", 137: "redirect"}
UNREACH6 = {0: "unreachable route", 1: "unreachable prohibited", 2: "beyond scope", 3: "unreachable address",
            4: "unreachable port", 5: "source address failed policy", 6: "reject route"}
# extension headers walked to the transport header: hop-by-hop, routing, destination options,
# mobility, HIP, shim6 (their length is in 8-byte units, not counting the first 8)
EXT6 = (0, 43, 60, 135, 139, 140)
IPPROTO_ICMPV6 = 58
ND_SOLICIT, ND_ADVERT = 135, 136
# (protocol, ICMP type) of what a probe or its errors can be, in both families
ECHO_REQUEST = ((1, 8), (58, 128))
ECHO_REPLY = ((1, 0), (58, 129))
ICMP_ERRORS = ((1, 3), (1, 4), (1, 11), (1, 12), (58, 1), (58, 2), (58, 3), (58, 4))
REDIRECTS = ((1, 5), (58, 137))


@dataclass
class Pkt:
    src: str
    dst: str
    proto: int                      # 1 icmp, 6 tcp, 17 udp, 58 icmpv6 (IPv6: after extension headers)
    length: int                     # IP total length (IPv6: 40 + payload length)
    ident: int                      # IP id (IPv6: the fragment header's, else 0)
    df: bool                        # IPv6: always (routers never fragment it)
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
    family: int = 4
    nd_target: str = ""             # NDP solicitation/advertisement: the address asked or told about

    @property
    def icmp(self) -> bool:
        return self.proto in (1, IPPROTO_ICMPV6)

    def _is(self, pairs) -> bool:
        return (self.proto, self.icmp_type) in pairs

    @property
    def echo_request(self) -> bool:
        return self._is(ECHO_REQUEST)

    @property
    def echo_reply(self) -> bool:
        return self._is(ECHO_REPLY)

    @property
    def icmp_error(self) -> bool:
        """An ICMP error (unreachable, too big, time exceeded, parameter problem) of either family."""
        return self._is(ICMP_ERRORS)

    @property
    def redirect(self) -> bool:
        return self._is(REDIRECTS)


def _ip(b: bytes) -> str:
    return "%d.%d.%d.%d" % tuple(b)


def _ip6(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, bytes(b))


def ip_payload(frame: bytes, hatype: int) -> bytes | None:
    """The IP packet (either family) inside a captured frame, or None if it is something else."""
    if hatype == ARPHRD_NONE:
        return frame if frame[:1] and frame[0] >> 4 in (4, 6) else None
    if hatype == ARPHRD_ETHER and len(frame) >= 34:
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype in (ETH_P_IP, ETH_P_IPV6):
            return frame[14:]
    return None


def arp_of(frame: bytes, hatype: int) -> tuple[int, str, str] | None:
    """(operation 1 request / 2 reply, sender IP, target IP) of an Ethernet ARP frame, else None."""
    if hatype != ARPHRD_ETHER or len(frame) < 42 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_ARP:
        return None
    op = struct.unpack_from("!H", frame, 20)[0]
    return op, _ip(frame[28:32]), _ip(frame[38:42])


def nd_of(p: "Pkt") -> tuple[int, str, str] | None:
    """NDP as ARP's shape: (1 solicitation / 2 advertisement, sender, target): a solicitation's
    sender asks for its target; an advertisement's sender is the address it advertises."""
    if p.proto != IPPROTO_ICMPV6 or not p.nd_target:
        return None
    if p.icmp_type == ND_SOLICIT:
        return 1, p.src, p.nd_target
    return 2, p.nd_target, p.dst


def parse_ip(data: bytes, quoted: bool = False) -> Pkt | None:
    """An IPv4 or IPv6 packet; ``quoted``: the start of one inside an ICMP error (may be cut)."""
    if data[:1] and data[0] >> 4 == 6:
        return _parse6(data, quoted)
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
    else:
        _transport(p, body)
    return p


def _transport(p: Pkt, body: bytes) -> None:
    """TCP and UDP, the same in both families."""
    if p.proto == 6 and len(body) >= 14:
        p.sport, p.dport, p.tcp_seq, p.tcp_ack = struct.unpack_from("!HHII", body, 0)
        p.tcp_flags = body[13]
        off = (body[12] >> 4) * 4
        p.payload = bytes(body[off:])
    elif p.proto == 17 and len(body) >= 8:
        p.sport, p.dport = struct.unpack_from("!HH", body, 0)
        p.payload = bytes(body[8:])
        _wireguard(p)


def _parse6(data: bytes, quoted: bool) -> Pkt | None:
    if len(data) < 40:
        return None
    plen, nh = struct.unpack_from("!HB", data, 4)
    p = Pkt(_ip6(data[8:24]), _ip6(data[24:40]), nh, 40 + plen, 0, True, family=6)
    end = len(data) if quoted else min(len(data), 40 + plen)
    off, later_fragment = 40, False
    while off + 8 <= end:
        if nh in EXT6:
            nh, off = data[off], off + (data[off + 1] + 1) * 8
        elif nh == 51:                                  # AH: length in 4-byte units, minus 2
            nh, off = data[off], off + (data[off + 1] + 2) * 4
        elif nh == 44:                                  # fragment: only the first one has the header
            p.ident = struct.unpack_from("!I", data, off + 4)[0]
            later_fragment = bool(struct.unpack_from("!H", data, off + 2)[0] & 0xFFF8)
            nh, off = data[off], off + 8
        else:
            break
    p.proto = nh
    body = data[off:end]
    if later_fragment:
        return p
    if nh == IPPROTO_ICMPV6 and len(body) >= 8:
        p.icmp_type, p.icmp_code = body[0], body[1]
        if p.icmp_type in (128, 129):
            p.icmp_id, p.icmp_seq = struct.unpack_from("!HH", body, 4)
            p.payload = bytes(body[8:])
        elif p.icmp_type in (1, 2, 3, 4) and not quoted:
            if p.icmp_type == 2:
                p.mtu = struct.unpack_from("!I", body, 4)[0]
            p.inner = parse_ip(bytes(body[8:]), quoted=True)
        elif p.icmp_type in (ND_SOLICIT, ND_ADVERT) and len(body) >= 24:
            p.nd_target = _ip6(body[8:24])
        elif p.icmp_type == 137 and len(body) >= 40 and not quoted:
            p.gateway = _ip6(body[8:24])
            p.inner = _redirected(bytes(body[40:]))
    else:
        _transport(p, body)
    return p


def _redirected(options: bytes) -> Pkt | None:
    """The packet an ICMPv6 redirect quotes, from its Redirected Header option (type 4)."""
    i = 0
    while i + 8 <= len(options):
        kind, units = options[i], options[i + 1]
        if units == 0:
            return None
        if kind == 4:
            return parse_ip(options[i + 8:i + units * 8], quoted=True)
        i += units * 8
    return None


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
    if p.family == 6:
        return _summary6(p)
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
    return _transport_summary(p, "IP") or f"IP {p.src} > {p.dst}: proto {p.proto}, length {p.length}"


def _transport_summary(p: Pkt, ip: str) -> str | None:
    if p.proto == 6:
        flags = "".join(c for bit, c in TCP_FLAGS if p.tcp_flags & bit) or "none"
        text = f"{ip} {p.src}.{p.sport} > {p.dst}.{p.dport}: Flags [{flags}], seq {p.tcp_seq}"
        if p.tcp_flags & 0x10:
            text += f", ack {p.tcp_ack}"
        return text + f", length {len(p.payload)}"
    if p.proto == 17:
        text = f"{ip} {p.src}.{p.sport} > {p.dst}.{p.dport}: UDP, length {len(p.payload)}"
        if p.wg_type:
            text += f" (WireGuard {WG_TYPES[p.wg_type]}"
            if p.wg_type == 4:
                text += f", receiver {p.wg_receiver:#x}, counter {p.wg_counter}"
            text += ")"
        return text
    return None


def _summary6(p: Pkt) -> str:
    """As tcpdump -nn prints IPv6: ``IP6 a > b: ICMP6, echo request, id 1, seq 1, length 64``."""
    head, length = f"IP6 {p.src} > {p.dst}", p.length - 40
    if p.proto == IPPROTO_ICMPV6:
        what = ICMP6_NAMES.get(p.icmp_type, f"type {p.icmp_type}")
        if p.icmp_type in (128, 129):
            what += f", id {p.icmp_id}, seq {p.icmp_seq}"
        elif p.icmp_type == 1:
            what += f", {UNREACH6.get(p.icmp_code, f'code {p.icmp_code}')}"
        elif p.icmp_type == 2:
            what += f", mtu {p.mtu}"
        elif p.icmp_type == ND_SOLICIT and p.nd_target:
            what += f", who has {p.nd_target}"
        elif p.icmp_type == ND_ADVERT and p.nd_target:
            what += f", tgt is {p.nd_target}"
        elif p.icmp_type == 137:
            what += f", to {p.gateway}"
        if p.inner is not None and p.icmp_type not in (128, 129):
            what += f" for {p.inner.src} > {p.inner.dst}"
        return f"{head}: ICMP6, {what}, length {length}"
    return _transport_summary(p, "IP6") or f"{head}: next-header {p.proto}, length {length}"
