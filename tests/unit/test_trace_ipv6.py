"""IPv6 in a trace: probes built as scapy builds them, frames decoded through extension headers,
ICMPv6 errors read as ICMP's, NDP as the neighbour evidence, WireGuard over an IPv6 underlay."""
from __future__ import annotations

import struct

from scapy.layers.inet import UDP, TCP
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS,
                                ICMPv6ND_Redirect, ICMPv6NDOptRedirectedHdr, ICMPv6PacketTooBig, ICMPv6TimeExceeded,
                                IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting)
from scapy.layers.l2 import Ether

from wgtrace.model.labfile import load_lab
from wgtrace.nodes.base import Frame
from wgtrace.trace.capture import Capture, Observation, _keep, _Tap
from wgtrace.trace.packets import ARPHRD_ETHER, ARPHRD_NONE, ip_payload, nd_of, parse_ip, summary, wg_carries
from wgtrace.trace.path import assemble
from wgtrace.trace.probe import Probe

SRC, DST = "fd10:1::10", "fd10:2::10"


def probe(kind="icmp", port=0) -> Probe:
    p = Probe("pc1", DST, kind, port, 0, nonce=0x1234ABCD, ident=4242 if kind == "icmp" else 50000)
    p.src_ip = SRC
    return p


def echo6(p: Probe, src=SRC, dst=DST, reply=False) -> bytes:
    kind = ICMPv6EchoReply if reply else ICMPv6EchoRequest
    return bytes(IPv6(src=src, dst=dst) / kind(id=p.ident, seq=1) / (p.marker + b"\0" * 40))


def test_probes_are_built_as_scapy_builds_them():
    for kind, port, size in [("icmp", 0, 0), ("icmp", 0, 1400), ("tcp", 22, 0), ("tcp", 22, 300),
                             ("udp", 53, 0), ("udp", 53, 200)]:
        p = Probe.new("a", DST, kind, port, size)
        p.src_ip = SRC
        ip = IPv6(src=SRC, dst=DST, hlim=64)
        if kind == "icmp":
            ref = ip / ICMPv6EchoRequest(id=p.ident, seq=1) / (p.marker + b"\0" * max(0, (size or 104) - 48 - len(p.marker)))
        elif kind == "tcp":
            ref = ip / TCP(sport=p.ident, dport=port, flags="S", seq=p.nonce, window=64240)
            if size:
                ref = ref / (b"\0" * (size - 60))
        else:
            ref = ip / UDP(sport=p.ident, dport=port) / (p.marker + b"\0" * max(0, (size or 48 + len(p.marker)) - 48 - len(p.marker)))
        assert p.build() == bytes(ref), (kind, size)
        assert p.family == 6 and len(p.build()) == len(ref)
    assert Probe("a", DST, "icmp").smallest == 64 and Probe("a", "10.0.0.1", "icmp").smallest == 44


def test_summaries_in_tcpdump_style():
    p = probe()
    assert summary(parse_ip(echo6(p))) == f"IP6 {SRC} > {DST}: ICMP6, echo request, id 4242, seq 1, length 64"
    syn = parse_ip(bytes(IPv6(src=SRC, dst=DST) / TCP(sport=40000, dport=22, flags="S", seq=7)))
    assert summary(syn) == f"IP6 {SRC}.40000 > {DST}.22: Flags [S], seq 7, length 0"
    ptb = parse_ip(bytes(IPv6(src="fd10:2::1", dst=SRC) / ICMPv6PacketTooBig(mtu=1280) / IPv6(echo6(p))))
    assert ptb.mtu == 1280 and "ICMP6, packet too big, mtu 1280 for fd10:1::10 > fd10:2::10" in summary(ptb)


def test_extension_headers_are_walked_to_the_transport():
    p = probe("udp", 53)
    base = IPv6(src=SRC, dst=DST)
    udp = UDP(sport=50000, dport=53) / (p.marker + b"\0" * 4)
    for ext in (IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrRouting(addresses=[]),
                IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt(), IPv6ExtHdrFragment(offset=0, m=0, id=77)):
        q = parse_ip(bytes(base / ext / udp))
        assert (q.proto, q.sport, q.dport) == (17, 50000, 53), ext.summary()
        assert p.role(q) == "request"
    later = parse_ip(bytes(base / IPv6ExtHdrFragment(offset=100, m=0, id=77, nh=17) / (b"\0" * 16)))
    assert later.proto == 17 and later.sport == 0 and later.ident == 77     # no transport header in it


def test_icmpv6_errors_are_errors_about_the_probe():
    p = probe()
    inner = IPv6(echo6(p))
    for err in (ICMPv6DestUnreach(code=3), ICMPv6DestUnreach(code=4), ICMPv6TimeExceeded(), ICMPv6PacketTooBig(mtu=1400)):
        q = parse_ip(bytes(IPv6(src="fd10:1::1", dst=SRC) / err / inner))
        assert q.icmp_error and p.role(q) == "error", err.summary()
    u = probe("udp", 53)
    closed = parse_ip(bytes(IPv6(src=DST, dst=SRC) / ICMPv6DestUnreach(code=4)
                            / IPv6(src=SRC, dst=DST) / UDP(sport=50000, dport=53) / u.marker))
    assert u.role(closed) == "error" and "unreachable port" in summary(closed)
    redirect = parse_ip(bytes(IPv6(src="fe80::1", dst=SRC) / ICMPv6ND_Redirect(tgt="fe80::2", dst=DST)
                              / ICMPv6NDOptRedirectedHdr(pkt=inner)))
    assert p.role(redirect) == "redirect" and redirect.gateway == "fe80::2"
    assert p.role(parse_ip(echo6(p, DST, SRC, reply=True))) == "reply"
    other = Probe("pc1", DST, nonce=1, ident=1)
    assert other.role(parse_ip(echo6(p))) is None


def test_ndp_is_the_neighbour_evidence():
    ns = parse_ip(bytes(IPv6(src=SRC, dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt="fd10:1::1")))
    na = parse_ip(bytes(IPv6(src="fd10:1::1", dst=SRC) / ICMPv6ND_NA(tgt="fd10:1::1")))
    assert nd_of(ns) == (1, SRC, "fd10:1::1") and nd_of(na) == (2, "fd10:1::1", SRC)
    assert summary(ns).endswith("neighbor solicitation, who has fd10:1::1, length 24")
    # in a capture: recorded as neighbour evidence, not counted as somebody else's traffic
    obs = Observation(probe())

    class Source:
        def ifaces(self):
            return ["eth0"]
    tap = _Tap(Source(), "pc1", {"lo"})
    for raw in (bytes(IPv6(src=SRC, dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt="fd10:1::1")),
                bytes(IPv6(src="fd10:1::1", dst=SRC) / ICMPv6ND_NA(tgt="fd10:1::1"))):
        f = Frame(1.0, "eth0", False, ARPHRD_ETHER, bytes(Ether(type=0x86DD)) + raw)
        _keep(tap, f, obs, False, {"handshake_grace": False, "last_move": 0, "done": ""}, 0.25)
    assert [a[4:] for a in obs.arp] == [(1, SRC, "fd10:1::1"), (2, "fd10:1::1", SRC)] and not obs.other


def test_frames_of_both_families():
    raw = echo6(probe())
    assert ip_payload(bytes(Ether(type=0x86DD)) + raw, ARPHRD_ETHER) == raw
    assert ip_payload(raw, ARPHRD_NONE) == raw


def wg6(src: str, sport: int, dst: str, dport: int, receiver: int, counter: int, inner_len: int) -> bytes:
    body = struct.pack("<B3xIQ", 4, receiver, counter) + b"\0" * (((inner_len + 15) // 16) * 16 + 16)
    return bytes(IPv6(src=src, dst=dst) / UDP(sport=sport, dport=dport) / body)


def test_wireguard_over_an_ipv6_underlay_is_followed():
    lab = load_lab("seed")
    p = Probe("home", "10.10.13.61", nonce=0x1234ABCD, ident=4242)
    p.src_ip = "192.168.2.2"
    from scapy.layers.inet import ICMP, IP
    req = bytes(IP(src=p.src_ip, dst=p.dst) / ICMP(id=p.ident, seq=1) / (p.marker + b"\0" * 20))
    d = wg6("2001:db8:1::9", 52796, "2001:db8:13::13", 38371, 7, 3, len(req))
    q = parse_ip(d)
    assert q.wg_type == 4 and wg_carries(q.wg_len, len(req)) and q.family == 6
    caps = [Capture(0.000, "home", "wg0", "out", parse_ip(req)),
            Capture(0.001, "home", "wlp2s0", "out", q),
            Capture(0.003, "bcc", "eth0", "in", parse_ip(d)),
            Capture(0.004, "bcc", "wg0", "in", parse_ip(req))]
    res = assemble(lab, Observation(p, sent_ts=0.0, captures=caps), "home", "target")
    under = [h for h in res.hops if h.layer == "underlay"]
    assert [h.carries for h in under] == [0, 0] and under[0].summary.startswith("IP6 2001:db8:1::9.52796 >")


def test_an_ipv6_path_is_assembled():
    lab = load_lab("seed")
    p = probe()
    obs = Observation(p, sent_ts=0.0, captures=[
        Capture(0.0, "home", "wg0", "out", parse_ip(echo6(p))),
        Capture(0.2, "home", "wg0", "in", parse_ip(echo6(p, DST, SRC, reply=True))),
    ])
    res = assemble(lab, obs, "home", DST)
    assert res.reachable and res.hops[1].role == "reply"
