"""IPv6 in the verdict rules and around them, on hand-made facts: the families a probe is sent
in, one result per family, reverse-path rules of the firewall, the leak around a full tunnel,
disable_ipv6, NDP, ICMPv6 echo ignored, the MTU words."""
from __future__ import annotations

import pytest

from wgtrace.diagnose import firewall
from wgtrace.diagnose.context import Context
from wgtrace.diagnose.facts import NodeFacts
from wgtrace.diagnose.firewall import Firewall, iptables
from wgtrace.diagnose.rules import decide
from wgtrace.diagnose.verdict import Stop
from wgtrace.errors import UsageError
from wgtrace.model.labfile import load_lab
from wgtrace.model.lab import Check
from wgtrace.nodes.base import LinkInfo, RouteLookup
from wgtrace.nodes.wgstate import WgIface, WgPeer
from wgtrace.teach.checks import PairResult
from wgtrace.texts import explain
from wgtrace.trace.leak import leak_of
from wgtrace.trace.path import Hop, Place, Story, TraceResult
from wgtrace.trace.run import Families, dst_addresses, families

S2S = load_lab("site2site")
RW = load_lab("roadwarrior")
SAVE6 = """*raw
:PREROUTING ACCEPT [10:800]
[3:240] -A PREROUTING -m rpfilter --invert -j DROP
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
[0:0] -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
COMMIT
"""


def test_a_name_with_both_families_is_probed_in_both():
    assert families(S2S, "pc1", "pc2") == [4, 6]
    assert families(S2S, "pc1", "pc2", 6) == [6]
    assert families(S2S, "pc1", "fd10:2::10") == [6] and families(S2S, "pc1", "10.2.0.10") == [4]
    # both ends have both: carol's IPv4 is in her tunnel only, bob's IPv6 too (their checks say
    # family = 6 and family = 4 where only one is meant to work)
    assert families(RW, "carol", "web") == [4, 6] and families(RW, "carol", "web", 6) == [6]
    assert dst_addresses(S2S, "gw1", "laptop", 6) == ["fd99::1"]     # the address on a network both share
    assert dst_addresses(S2S, "pc2", "pc1") == ["10.2.0.10", "fd10:2::10"]
    with pytest.raises(UsageError):
        dst_addresses(S2S, "fd10:2::10", "pc1", 4)
    with pytest.raises(UsageError):
        dst_addresses(S2S, "fd10:77::1", "pc1")             # outside the lab's networks


def _trace(src: str, dst_ip: str, hops: list[Hop], reachable: bool = False) -> TraceResult:
    last = hops[-1] if hops else None
    return TraceResult(src, "x", {"kind": "icmp", "dst_ip": dst_ip, "port": None, "size": None}, reachable, hops,
                       None if reachable or last is None else Place(last.node, last.iface, "request", last.dir),
                       stop_phase="" if reachable else "request",
                       story=Story("entered-never-left", {"phase": ("@", "phase.request"), "node": "n", "iface": "i"}))


def _hop(node, iface, d, src, dst, role="request", t=0.0):
    return Hop(node, iface, d, src, dst, f"IP6 {src} > {dst}: ICMP6, echo request, id 1, seq 1, length 64", t, role,
               length=104, proto=58, icmp_type=128)


def test_one_result_per_family_in_json():
    four = _trace("pc1", "10.2.0.10", [_hop("pc1", "eth0", "out", "10.1.0.10", "10.2.0.10")], reachable=True)
    six = _trace("pc1", "fd10:2::10", [_hop("pc1", "eth0", "out", "fd10:1::10", "fd10:2::10")])
    one = Families([four]).to_json()
    assert one["family"] == 4 and "families" not in one
    both = Families([four, six]).to_json()
    assert both["family"] == 4 and both["reachable"] is True        # the first result, as for one family
    assert [r["family"] for r in both["families"]] == [4, 6] and both["all_reachable"] is False
    assert not Families([four, six]).reachable


def test_reverse_path_rules_are_read_neutrally_and_loosened():
    rules = iptables.parse(SAVE6, 6)
    rp = next(r for r in rules if r.match("rpfilter"))
    assert (rp.hook, rp.verdict, rp.match("rpfilter")) == ("prerouting", "drop", "!strict")
    assert firewall.loosen(rp) == [
        ("ip6tables", "-t", "raw", "-D", "PREROUTING", "-m", "rpfilter", "--invert", "-j", "DROP"),
        ("ip6tables", "-t", "raw", "-I", "PREROUTING", "-m", "rpfilter", "--loose", "--invert", "-j", "DROP")]
    assert Firewall(rules, [(rp, 1)]).reverse_path_drops(6) == [(rp, 1)]
    assert Firewall(rules, [(rp, 1)]).reverse_path_drops(4) == []


def _ctx(lab, res, facts, routes=None, keys=None) -> Context:
    facts = {n: facts.get(n, NodeFacts(n)) for n in lab.nodes}
    return Context(lab, res, facts, routes or {}, keys=keys or {})


def test_an_ipv6_packet_the_rpfilter_rule_dropped_is_rp_filter():
    rules = iptables.parse(SAVE6, 6)
    rp = next(r for r in rules if r.match("rpfilter"))
    f = NodeFacts("gw2", sysctl={"net.ipv6.conf.all.forwarding": "1"}, fw=Firewall(rules, [(rp, 1)]),
                  links={"wg1": LinkInfo("wg1", True, 1420, ["fd99::2/64"])})
    res = _trace("pc1", "fd10:2::10", [_hop("pc1", "eth0", "out", "fd10:1::10", "fd10:2::10"),
                                       _hop("gw2", "wg1", "in", "fd10:1::10", "fd10:2::10", t=1)])
    routes = {("gw2", "fd10:1::10", None, None): RouteLookup(True, "eth0", "2001:db8:2::1")}
    v = decide(_ctx(S2S, res, {"gw2": f}, routes))
    assert v.cause == "rp-filter" and v.stop == Stop("gw2", "wg1", "request")
    assert [e.kind for e in v.evidence] == ["capture", "ip6tables", "route"]
    assert [x.command for x in v.fix] == ["ip -6 route add fd10:1::/64 dev wg1"]
    text = explain(v.cause, v.params)
    assert "rpfilter --invert" in text and "rp_filter to 2" not in text
    # the same verdict without a route back: the rule's loose mode
    v = decide(_ctx(S2S, res, {"gw2": f}, {("gw2", "fd10:1::10", None, None): RouteLookup(False, error="x")}))
    assert v.cause == "rp-filter" and v.fix[-1].command.endswith("--loose --invert -j DROP")


def test_ipv6_forwarding_off():
    f = NodeFacts("gw2", sysctl={"net.ipv6.conf.all.forwarding": "0", "net.ipv4.ip_forward": "1"})
    res = _trace("pc1", "fd10:2::10", [_hop("gw2", "wg1", "in", "fd10:1::10", "fd10:2::10")])
    v = decide(_ctx(S2S, res, {"gw2": f}))
    assert v.cause == "forwarding-disabled" and [x.command for x in v.fix] == ["sysctl -w net.ipv6.conf.all.forwarding=1"]
    assert "net.ipv6.conf.all.forwarding = 1" in explain(v.cause, v.params)


def test_ipv6_ping_ignored_at_the_destination():
    f = NodeFacts("pc2", sysctl={"net.ipv6.icmp.echo_ignore_all": "1", "net.ipv4.icmp_echo_ignore_all": "0"})
    res = _trace("pc1", "fd10:2::10", [_hop("pc2", "eth0", "in", "fd10:1::10", "fd10:2::10")])
    routes = {("pc2", "fd10:1::10", None, None): RouteLookup(True, "eth0", "fd10:2::1")}
    v = decide(_ctx(S2S, res, {"pc2": f}, routes))
    assert v.cause == "input-filtered" and v.fix[0].command == "sysctl -w net.ipv6.icmp.echo_ignore_all=0"


def test_disable_ipv6_is_turned_off_before_the_address_comes_back():
    f = NodeFacts("pc1", sysctl={"net.ipv6.conf.eth0.disable_ipv6": "1"},
                  links={"eth0": LinkInfo("eth0", True, 1500, ["10.1.0.10/24"])})
    res = _trace("pc1", "fd10:2::10", [])
    res.send_error = "Network is unreachable"
    v = decide(_ctx(S2S, res, {"pc1": f}))
    assert v.cause == "link-down" and v.stop.node == "pc1"
    assert [x.command for x in v.fix][:2] == ["sysctl -w net.ipv6.conf.eth0.disable_ipv6=0",
                                              "ip addr add fd10:1::10/64 dev eth0"]
    assert any(e.key == "ipv6-disabled" for e in v.evidence)


def test_an_unanswered_neighbour_solicitation_is_ndp_evidence():
    f = NodeFacts("pc1", neigh=[("eth0", "fd10:1::11", "FAILED")], links={"eth0": LinkInfo("eth0", True, 1500, [])})
    res = _trace("pc1", "fd10:2::10", [])
    res.route = {"dev": "eth0", "via": "fd10:1::11", "src": "fd10:1::10"}
    res.arp = [("pc1", "eth0", "out", 1, "fd10:1::10", "fd10:1::11")]
    v = decide(_ctx(S2S, res, {"pc1": f}))
    assert v.cause == "neighbor-unreachable"
    assert [(e.kind, e.key, dict(e.params)["n"]) for e in v.evidence] == [("ndp", "ndp-unanswered", 1)]
    assert "neighbour solicitation" in explain(v.cause, v.params)
    assert [x.command for x in v.fix] == ["ip -6 route add default via fd10:1::1"]     # the lab file's gateway


def _full(allowed, fwmark=51820):
    return [WgIface("wg0", "A=", 0, [WgPeer("S=", "203.0.113.5:51820", allowed, 0, 0, 0, 25)], fwmark)]


def test_a_probe_around_the_full_tunnel_is_a_leak():
    out = _hop("alice", "wlan0", "out", "2001:db8:a1::23", "2001:db8:80::80")
    back = _hop("alice", "wlan0", "in", "2001:db8:80::80", "2001:db8:a1::23", role="reply", t=1)
    res = _trace("alice", "2001:db8:80::80", [out, back], reachable=True)
    links = {"wlan0": LinkInfo("wlan0", True, 1500, ["192.168.1.23/24", "2001:db8:a1::23/64"])}
    assert leak_of(res, _full(["0.0.0.0/0"]), links) == ("wlan0", "wg0", "0.0.0.0/0")
    assert leak_of(res, _full(["10.8.0.0/24"]), links) is None             # a split tunnel: meant to go around
    inside = _trace("alice", "2001:db8:80::80", [_hop("alice", "wg0", "out", "fd42:42:42::2", "2001:db8:80::80"),
                                                 back], reachable=True)
    assert leak_of(inside, _full(["0.0.0.0/0", "::/0"]), links) is None
    lan = _trace("alice", "2001:db8:a1::1", [_hop("alice", "wlan0", "out", "2001:db8:a1::23", "2001:db8:a1::1"),
                                             back], reachable=True)
    assert leak_of(lan, _full(["0.0.0.0/0", "::/0"]), links) is None      # its own LAN: reached directly
    f = NodeFacts("alice", links=links, wg=_full(["0.0.0.0/0"]))
    v = decide(_ctx(RW, res, {"alice": f}))
    assert v.cause == "reachable"
    leak = next(e for e in v.evidence if e.key == "leak")
    assert dict(leak.params) == {"iface": "wlan0", "wg": "wg0", "covers": "0.0.0.0/0", "family": 6}
    assert "IPv6 traffic goes around the tunnel" in leak.detail()


def test_matrix_columns_name_the_family():
    c = Check("pc1", "pc2", "tcp", 22)
    assert PairResult(c, "reachable", None, 4).column == "pc2 tcp/22"
    assert PairResult(c, "reachable", None, 6).column == "pc2 tcp/22 v6"
    assert PairResult(Check("nas", "fd42:42:42::2"), "reachable", None, 6).column == "fd42:42:42::2"


def test_mtu_words_follow_the_family():
    f = NodeFacts("gw2", links={"eth1": LinkInfo("eth1", True, 1280, ["fd10:2::1/64"])})
    hop = _hop("gw2", "wg1", "in", "fd10:1::10", "fd10:2::10")
    hop.length = 1400
    res = _trace("pc1", "fd10:2::10", [hop])
    res.probe["size"] = 1400
    routes = {("gw2", "fd10:2::10", "fd10:1::10", "wg1"): RouteLookup(True, "eth1"),
              ("gw2", "fd10:1::10", None, None): RouteLookup(True, "wg1")}
    f.sysctl = {"net.ipv6.conf.all.forwarding": "1"}
    v = decide(_ctx(S2S, res, {"gw2": f}, routes))
    assert v.cause == "mtu" and v.evidence[0].key == "mtu-smaller6"
    text = explain(v.cause, v.params)
    assert "packet too big" in text and "don't fragment" not in text
