"""Pure logic of a trace: decoding frames, recognising the probe, assembling the path."""
from __future__ import annotations

import struct

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from wgtrace.model.labfile import load_lab
from wgtrace.trace.capture import Capture, Observation
from wgtrace.trace.packets import ARPHRD_ETHER, ARPHRD_NONE, ip_payload, parse_ip, summary, wg_carries
from wgtrace.trace.path import assemble
from wgtrace.trace.probe import Probe

LAB = load_lab("seed")


def probe(kind="icmp", port=0) -> Probe:
    p = Probe("home", "10.10.13.61", kind, port, 0, nonce=0x1234ABCD, ident=4242 if kind == "icmp" else 50000)
    p.src_ip = "192.168.2.2"
    return p


def echo(p: Probe, src: str, dst: str, reply: bool = False, ident: int | None = None) -> bytes:
    return bytes(IP(src=src, dst=dst) / ICMP(type=0 if reply else 8, id=ident or p.ident, seq=1) / (p.marker + b"\0" * 20))


def wg_data(src: str, sport: int, dst: str, dport: int, receiver: int, counter: int, inner_len: int) -> bytes:
    body = struct.pack("<B3xIQ", 4, receiver, counter) + b"\0" * (((inner_len + 15) // 16) * 16 + 16)
    return bytes(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / body)


def cap(ts, node, iface, d, data) -> Capture:
    return Capture(ts, node, iface, d, parse_ip(data))


def test_tcpdump_style_summaries():
    p = probe()
    assert summary(parse_ip(echo(p, "192.168.2.2", "10.10.13.61"))) == \
        "IP 192.168.2.2 > 10.10.13.61: ICMP echo request, id 4242, seq 1, length 44"
    syn = parse_ip(bytes(IP(src="10.10.13.62", dst="10.10.13.61") / TCP(sport=40000, dport=22, flags="S", seq=7)))
    assert summary(syn) == "IP 10.10.13.62.40000 > 10.10.13.61.22: Flags [S], seq 7, length 0"
    frag = parse_ip(bytes(IP(src="192.168.2.1", dst="192.168.2.2") / ICMP(type=3, code=4, nexthopmtu=1280)
                          / IP(src="192.168.2.2", dst="10.10.13.61", flags="DF") / ICMP(id=4242)))
    assert "unreachable - need to frag (mtu 1280) for 192.168.2.2 > 10.10.13.61" in summary(frag)


def test_frames_from_ethernet_and_tun():
    raw = echo(probe(), "1.1.1.1", "2.2.2.2")
    assert ip_payload(bytes(Ether() / IP(raw)), ARPHRD_ETHER) == raw
    assert ip_payload(raw, ARPHRD_NONE) == raw
    assert ip_payload(b"\x70" + raw[1:], ARPHRD_NONE) is None       # neither IPv4 nor IPv6


def test_wireguard_header_and_padding():
    p = parse_ip(wg_data("192.168.0.9", 52796, "203.0.113.13", 38371, 0xABC, 9, 84))
    assert (p.wg_type, p.wg_receiver, p.wg_counter) == (4, 0xABC, 9)
    assert wg_carries(p.wg_len, 84) and not wg_carries(p.wg_len, 120)
    keepalive = parse_ip(wg_data("1.1.1.1", 1, "2.2.2.2", 2, 1, 1, 0))
    assert keepalive.wg_len == 32


def test_probe_marks_survive_nat_and_errors_are_not_answers():
    p = probe()
    assert p.role(parse_ip(echo(p, "10.10.13.62", "10.10.13.61", ident=999))) == "request"   # NAT changed the id
    assert p.role(parse_ip(echo(p, "10.10.13.61", "192.168.2.2", reply=True))) == "reply"
    other = Probe("home", "10.10.13.61", nonce=1, ident=1)
    assert other.role(parse_ip(echo(p, "192.168.2.2", "10.10.13.61"))) is None            # another probe
    redirect = parse_ip(bytes(IP(src="192.168.2.1", dst="192.168.2.2") / ICMP(type=5, code=1, gw="10.10.13.61")
                              / IP(src="192.168.2.2", dst="10.10.13.61") / ICMP(id=4242)))
    assert p.role(redirect) == "redirect"
    t = probe("tcp", 22)
    synack = parse_ip(bytes(IP(src="10.10.13.61", dst="10.10.13.62") / TCP(sport=22, dport=40001, flags="SA",
                                                                        seq=5, ack=0x1234ABCE)))
    assert t.role(synack) == "reply"


def test_assemble_ties_the_tunnel_and_finds_the_stop():
    p = probe()
    req = echo(p, "192.168.2.2", "10.10.13.61")
    caps = [
        cap(0.000, "home", "wg0", "out", req),
        cap(0.001, "home", "wlp2s0", "out", wg_data("192.168.0.9", 52796, "203.0.113.13", 38371, 7, 3, len(req))),
        cap(0.002, "home-router", "wan", "out", wg_data("198.51.100.14", 9999, "203.0.113.13", 38371, 7, 3, len(req))),
        cap(0.003, "bcc", "eth0", "in", wg_data("198.51.100.14", 9999, "203.0.113.13", 38371, 7, 3, len(req))),
        cap(0.004, "bcc", "wg0", "in", req),
        cap(0.005, "bcc", "eth0", "in", wg_data("198.51.100.14", 9999, "203.0.113.13", 38371, 7, 4, 0)),  # keepalive
    ]
    obs = Observation(p, sent_ts=0.0, captures=caps)
    res = assemble(LAB, obs, "home", "target")
    assert not res.reachable
    assert (res.last_seen.node, res.last_seen.iface, res.last_seen.dir) == ("bcc", "wg0", "in")
    assert res.expected_next == "seen entering bcc on wg0, never left bcc"
    under = [h for h in res.hops if h.layer == "underlay"]
    assert [h.carries for h in under] == [0, 0, 0] and under[1].src == "198.51.100.14"
    assert res.inner_path() == "home.wg0 -> bcc.wg0"


def test_assemble_reply_at_source_is_reachable():
    p = probe()
    obs = Observation(p, sent_ts=0.0, captures=[
        cap(0.0, "home", "wg0", "out", echo(p, "192.168.2.2", "10.10.13.61")),
        cap(0.1, "target", "ens192", "in", echo(p, "10.10.13.62", "10.10.13.61")),
        cap(0.2, "home", "wg0", "in", echo(p, "10.10.13.61", "192.168.2.2", reply=True)),
    ])
    res = assemble(LAB, obs, "home", "target")
    assert res.reachable and res.reached_dst and res.last_seen is None
    assert res.to_json()["last_seen"] is None and res.to_json()["hops"][2]["role"] == "reply"


def test_nothing_sent_is_a_stop_at_the_source():
    obs = Observation(probe(), send_error="Network is unreachable", ended="send-error")
    res = assemble(LAB, obs, "home", "target")
    assert not res.reachable and res.last_seen is None and "Network is unreachable" in res.story_text()


def test_probes_are_built_as_scapy_builds_them():
    """The probe is packed by hand (scapy's import costs a third of a trace); byte for byte the same."""
    for kind, port, size in [("icmp", 0, 0), ("icmp", 0, 1400), ("tcp", 22, 0), ("tcp", 22, 300),
                             ("udp", 53, 0), ("udp", 53, 200)]:
        p = Probe.new("a", "10.10.13.61", kind, port, size)
        p.src_ip = "192.168.2.2"
        ip = IP(src=p.src_ip, dst=p.dst, ttl=64, flags="DF" if p.size else 0)
        if kind == "icmp":
            ref = ip / ICMP(type=8, id=p.ident, seq=1) / (p.marker + b"\0" * max(0, (size or 84) - 28 - len(p.marker)))
        elif kind == "tcp":
            ref = ip / TCP(sport=p.ident, dport=port, flags="S", seq=p.nonce, window=64240)
            if size:
                ref = ref / (b"\0" * (size - 40))
        else:
            ref = ip / UDP(sport=p.ident, dport=port) / (p.marker + b"\0" * max(0, (size or 28 + len(p.marker)) - 28 - len(p.marker)))
        assert p.build() == bytes(ref), (kind, size)
