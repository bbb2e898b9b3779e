"""The nftables provider on real ``nft -j list ruleset`` output (tests/data/nft, made on this
kernel: see its README): rules and policies read into neutral records, texts as nft prints
them, iptables-nft's tables left to the iptables provider, the evaluator's verdicts for packets
(sets, ranges, verdict maps, jumps and gotos, families, reverse-path), the drop without a counter
found by matching, and the nft commands a fix writes. No root: plain data."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wgtrace.diagnose import firewall
from wgtrace.diagnose.firewall import Firewall, Packet, nft
from wgtrace.diagnose.firewall.nftexpr import rule_text
from wgtrace.errors import LabFileError
from wgtrace.model.faults import _steps

DATA = Path(__file__).resolve().parents[1] / "data" / "nft"
SAMPLES = ("expressions", "firewalld", "service-docker")


def ruleset(name: str) -> dict:
    return nft.parse((DATA / f"{name}.json").read_text())


def fw(name: str, *tables: str) -> Firewall:
    """The sample's firewall (only these tables, when named: expressions.json holds several that
    would all run on one hook)."""
    return Firewall({r: n for r, n in ruleset(name).items() if not tables or r.table in tables})


def rule(rules, chain: str, handle: int):
    return next(r for r in rules if r.chain == chain and r.handle == handle and not r.policy)


def policy(rules, table: str, chain: str):
    return next(r for r in rules if r.table == table and r.chain == chain and r.policy)


# --- reading --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SAMPLES)
def test_every_rule_text_is_nfts_own(name):
    """Each rule's text is the line ``nft -a list ruleset`` prints for its handle (counters aside)."""
    listed, table = {}, None
    for line in (DATA / f"{name}.txt").read_text().splitlines():
        if m := re.match(r"^table (\S+) (\S+)", line):
            table = (m[1], m[2])
        elif (m := re.match(r"^\s+(.*) # handle (\d+)$", line)) and not m[1].endswith("{"):   # not a chain's head
            listed[(*table, int(m[2]))] = re.sub(r"counter packets \d+ bytes \d+", "counter", m[1])
    rules = [x["rule"] for x in json.loads((DATA / f"{name}.json").read_text())["nftables"] if "rule" in x]
    assert len(rules) == len(listed) > 3
    for r in rules:
        assert rule_text(r) == f"{listed[(r['family'], r['table'], r['handle'])]} # handle {r['handle']}"


def test_firewalld_chains_hooks_and_priorities():
    rules = ruleset("firewalld")
    assert {r.hook for r in rules} == {"input", "forward", "postrouting"}
    p = policy(rules, "firewalld", "filter_FORWARD")
    assert (p.verdict, p.position, p.family, p.nft_family, p.counted) == ("accept", 10, 0, "inet", False)
    assert p.text == "type filter hook forward priority 10; policy accept" and p.place == "inet firewalld filter_FORWARD"
    # chains only jumped to (or gone to) carry the hook of the base chain that reaches them
    assert {r.chain: r.hook for r in rules if r.chain.startswith("filter_IN")} == \
        {"filter_INPUT": "input", "filter_INPUT_ZONES": "input", "filter_IN_public": "input", "filter_IN_trusted": "input"}
    reject = rule(rules, "filter_FORWARD", 30)
    assert (reject.verdict, reject.catch_all, reject.counted) == ("reject", True, False)
    assert rule(rules, "filter_FORWARD", 25).matches == (("ctstate", "ESTABLISHED,RELATED"),)
    assert rule(rules, "filter_FORWARD", 26).matches == (("other", "ct status dnat"),)
    assert rule(rules, "nat_POSTROUTING", 35).matches == (("oif", "eth0"), ("family", "4"), ("src", "10.1.0.0/24"))


def test_matches_in_neutral_words():
    rules = ruleset("expressions")
    m = {(r.table, r.chain, r.handle): r.matches for r in rules if not r.policy}
    assert m[("filter", "input", 9)] == (("family", "4"), ("src", "{192.0.2.0/24,198.51.100.7}"))   # a named set
    assert m[("filter", "input", 11)] == (("proto", "tcp"), ("dport", "{22,80}"))
    assert m[("filter", "input", 13)] == (("proto", "tcp"), ("dport", "{443,8000-8080}"))
    assert m[("filter", "input", 15)] == (("proto", "icmp,ipv6-icmp"),)
    assert m[("filter", "input", 19)] == (("rpfilter", "!strict"),)
    assert m[("filter", "extra", 22)] == (("proto", "{tcp,udp,sctp,dccp,udplite}"), ("dport", "53"))
    assert m[("filter", "forward", 25)] == (("iif", "{wg0,wg1}"), ("oif", "eth1"))
    assert m[("filter", "forward", 26)] == (("iif", "eth0"), ("oif", "!eth1"))
    assert m[("filter", "forward", 27)] == (("family", "4"), ("src", "10.0.0.1-10.0.0.9"))
    assert m[("t", "c", 20)] == (("family", "6"), ("src", "{}"))                                  # an empty set
    assert m[("t", "c", 15)] == (("family", "6"), ("rpfilter", "!strict"))
    assert m[("t", "c", 16)] == (("other", "ip saddr . tcp dport @cc"),)                           # a concatenation
    assert m[("t", "c", 27)] == (("ctstate", "!ESTABLISHED"),)
    # a verdict map: one neutral rule per element, none counted
    vmap = sorted((r.position, r.verdict, r.matches) for r in rules if r.chain == "input" and r.handle == 18)
    assert [(v, mm) for _, v, mm in vmap] == [("drop", (("ctstate", "INVALID"),)), ("accept", (("ctstate", "ESTABLISHED"),)),
                                              ("accept", (("ctstate", "RELATED"),))]
    named = rule(rules, "c", 21)                     # ip saddr vmap @mm: the map's elements
    assert (named.verdict, named.matches) == ("drop", (("family", "4"), ("src", "10.9.9.9")))
    counted = {r.handle: r.counted for r in rules if not r.policy and r.chain == "input" and r.table == "filter"}
    assert counted[9] and counted[10] and not counted[11]
    assert rule(rules, "c", 18).counted              # a named counter
    # bridge tables see bridged frames, not routed packets: hooks of their own
    assert {r.hook for r in rules if r.nft_family == "bridge"} == {"bridge-forward"}


def test_iptables_nft_tables_left_to_iptables():
    outputs = {"iptables4": (DATA / "iptables-nft.iptables").read_text(),
               "iptables6": (DATA / "iptables-nft.ip6tables").read_text(), "nft": (DATA / "iptables-nft.json").read_text()}
    assert '"table": "filter"' in outputs["nft"] and '"name": "FORWARD"' in outputs["nft"]     # nft shows them too
    rules = firewall.parse(outputs)
    native = [r for r in rules if r.backend == "nft"]
    assert {(r.nft_family, r.table, r.chain) for r in native} == {("inet", "extra", "input")}
    assert len([r for r in native if not r.policy]) == 1
    ipt = [(r.table, r.chain, r.text) for r in rules if r.backend == "iptables"]
    assert len(ipt) == len(set(ipt)) and ("nat", "POSTROUTING", "-A POSTROUTING -s 10.1.0.0/24 -o eth0 -j MASQUERADE") in ipt
    # legacy iptables' tables never show in nft: nothing is left out then
    legacy = {**outputs, "iptables4": outputs["iptables4"].replace("(nf_tables)", "(legacy)")}
    assert {r.table for r in firewall.parse(legacy) if r.backend == "nft"} == {"extra", "filter", "nat"}


def test_garbage_reads_as_nothing():
    assert nft.parse("") == {} and nft.parse("not json") == {} and nft.parse('{"nftables": [{"rule": 5}]}') == {}
    odd = {"nftables": [
        {"chain": {"family": "inet", "table": "t", "name": "c", "type": "filter", "hook": "input", "prio": 0,
                   "policy": "drop"}},
        {"rule": {"family": "inet", "table": "t", "chain": "c", "handle": 2,
                  "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}}}, {"drop": None}]}},
        {"rule": {"family": "inet", "table": "t", "chain": "c", "handle": 3, "expr": "nope"}},
        {"rule": {"family": "inet", "chain": "c"}}]}
    rules = nft.parse(json.dumps(odd))           # a shape this reader does not know: kept, never judged
    assert sorted((r.handle, r.verdict, r.matches) for r in rules) == [(0, "drop", ()), (2, "", (("other", "unread"),))]


# --- the evaluator --------------------------------------------------------------------------

def test_firewalld_forward_and_input():
    f = fw("firewalld")
    new = lambda **kw: Packet(4, proto="icmp", src="10.1.0.10", dst="10.2.0.10", **kw)  # noqa: E731
    assert f.decide("forward", new(iif="eth1", oif="wg0"))[0] == "accept"
    assert f.decide("forward", new(iif="wg0", oif="eth1"))[0] == "accept"
    verdict, r = f.decide("forward", new(iif="eth0", oif="eth1"))          # the public zone: the final reject
    assert (verdict, r.handle) == ("drop", 30)
    assert f.judged("forward", new(iif="eth0", oif="eth1")) == [(r, 0)]
    assert f.decide("forward", Packet(4, iif="eth0", oif="eth1", proto="icmp", ctstate="ESTABLISHED"))[0] == "accept"
    wg = Packet(4, iif="eth0", proto="udp", sport=51820, dport=51820, src="198.51.100.20", dst="203.0.113.10")
    assert f.decide("input", wg)[0] == "accept" and f.judged("input", wg) == []
    ssh = Packet(4, iif="eth0", proto="tcp", sport=40000, dport=22, src="198.51.100.20", dst="203.0.113.10")
    assert f.judged("input", ssh)[0][0].handle == 16
    assert f.decide("input", Packet(6, iif="eth0", proto="icmp", src="fd02::10", dst="fd01::1"))[0] == "accept"


def test_policy_of_one_family_table_and_priority_order():
    f = fw("service-docker")
    out = Packet(4, iif="eth1", oif="eth0", proto="icmp", src="10.2.0.10", dst="198.18.0.80")
    got = f.judged("forward", out)
    assert [(r.table, r.chain, r.policy, n) for r, n in got] == [("docker", "forward", True, 0)]
    assert f.judged("forward", Packet(6, iif="eth1", oif="eth0", proto="icmp", src="fd02::10", dst="2001:db8::1")) == []
    assert f.decide("forward", Packet(4, iif="eth1", oif="wg0", proto="icmp"))[0] == "accept"     # via docker-user
    # the WireGuard port has a counter: a drop there is found by its counter, never by matching
    wg = Packet(4, iif="eth0", proto="udp", dport=51820, src="203.0.113.10", ctstate="NEW")
    assert f.decide("input", wg)[1].counted and f.judged("input", wg) == []
    assert f.judged("input", Packet(4, iif="eth0", proto="tcp", dport=22, src="203.0.113.10"))[0][0].policy


def test_sets_ranges_families_and_reverse_path():
    f = fw("expressions", "filter", "f6")
    blocked = Packet(4, iif="eth9", proto="udp", dport=9, src="198.51.100.7", dst="10.0.0.1")
    verdict, r = f.decide("input", blocked)
    assert (verdict, r.handle, r.counted) == ("drop", 9, True)
    assert f.decide("input", Packet(4, iif="eth9", proto="tcp", dport=80, src="203.0.113.9"))[1].handle == 11
    assert f.decide("input", Packet(4, iif="eth9", proto="tcp", dport=8042, src="203.0.113.9"))[1].handle == 13
    assert f.decide("input", Packet(6, iif="eth9", proto="icmp", src="2001:db8::9"))[1].handle == 15
    # fd00::/8 from eth*: jump to extra, which returns for addresses outside fd00:1::/64, then rpfilter
    lost = Packet(6, iif="eth3", proto="udp", dport=9, src="fd00::5", dst="fd00:2::1", rpf="loose")
    assert f.decide("input", lost)[1].handle == 19
    ok_back = Packet(6, iif="eth3", proto="udp", dport=9, src="fd00::5", dst="fd00:2::1", rpf="strict")
    assert f.decide("input", ok_back)[1].handle == 20                      # the final reject
    assert f.decide("forward", Packet(4, iif="eth5", oif="eth6", proto="tcp", src="10.0.0.4"))[1].handle == 27
    assert f.decide("forward", Packet(4, iif="eth5", oif="eth6", proto="tcp", src="10.0.0.10"))[0] == "accept"
    assert f.decide("forward", Packet(6, iif="eth5", oif="eth6", proto="udp", src="fd00::1"))[0] == "drop"  # ip6 f6
    # goto extra from eth0: its drop of IPv4
    assert f.decide("forward", Packet(4, iif="eth0", oif="eth7", proto="icmp", src="192.0.2.1"))[1].handle == 23


def test_an_undecidable_drop_is_the_one_for_a_lost_packet():
    """Read as a person reads it, a rule that asks what is not known of the packet (a mark) is
    passed over; for a packet known to be lost there, that drop is the one that took it."""
    f = fw("expressions", "t")
    p = Packet(4, iif="eth9", proto="udp", dport=7, src="10.9.9.1")
    assert f.decide("input", p)[1].handle == 25                             # the final reject
    assert f.decide("input", p, lost=True)[1].handle == 13                  # meta mark 1 drop
    assert f.judged("input", p)[0][0].handle == 13
    # an undecidable accept is passed over either way
    assert f.decide("input", Packet(4, iif="eth9", proto="icmp", src="10.9.9.1"), lost=True)[1].handle == 13


def test_a_match_that_fails_outweighs_one_not_judged():
    from wgtrace.diagnose.firewall.rules import matches
    r = rule(ruleset("expressions"), "c", 8)          # tcp flags syn tcp dport 22 ct state new … accept
    assert matches(r, Packet(4, proto="udp", dport=22)) is False
    assert matches(r, Packet(4, proto="tcp", dport=22)) is None
    assert matches(r, Packet(4, proto="tcp", dport=22, ctstate="ESTABLISHED")) is False


# --- the commands a fix writes --------------------------------------------------------------

def test_fix_commands():
    rules = ruleset("firewalld")
    f = Firewall(rules)
    assert firewall.undo(rule(rules, "filter_FORWARD", 26)) == \
        ("nft", "delete", "rule", "inet", "firewalld", "filter_FORWARD", "handle", "26")
    reject = rule(rules, "filter_FORWARD", 30)
    assert firewall.accept(f, "forward", 4, like=reject, first=True, iif="wg0") == \
        ("nft", "insert", "rule", "inet", "firewalld", "filter_FORWARD", "position", "30", "iifname", "wg0", "accept")
    docker = Firewall(ruleset("service-docker"))
    pol = policy(docker.rules, "docker", "forward")
    assert firewall.accept(docker, "forward", 4, like=pol, iif="eth1", oif="wg0") == \
        ("nft", "add", "rule", "ip", "docker", "forward", "iifname", "eth1", "oifname", "wg0", "accept")
    assert firewall.accept(docker, "forward", 4, like=pol, established=True) == \
        ("nft", "add", "rule", "ip", "docker", "forward", "ct", "state", "established,related", "accept")
    inp = policy(docker.rules, "filter", "input")
    assert firewall.accept(docker, "input", 6, like=inp, first=True, proto="udp", dport=51820) == \
        ("nft", "insert", "rule", "inet", "filter", "input", "udp", "dport", "51820", "accept")
    assert firewall.accept(docker, "input", 6, like=inp, proto="icmp", iif="0wg") == \
        ("nft", "add", "rule", "inet", "filter", "input", "iifname", '"0wg"', "meta", "l4proto", "ipv6-icmp", "accept")
    assert firewall.undo(inp) == ("nft", "chain", "inet", "filter", "input", "{ policy accept ; }")
    # masquerade: in the chain that translates already, even once it has been flushed
    assert firewall.masquerade(f, 4, "10.1.0.0/24", "eth0") == \
        ("nft", "add", "rule", "inet", "firewalld", "nat_POSTROUTING", "ip", "saddr", "10.1.0.0/24", "oifname", "eth0",
         "masquerade")
    flushed = Firewall({r: n for r, n in rules.items() if r.verdict != "masquerade"})
    assert firewall.masquerade(flushed, 4, "10.1.0.0/24", "eth0")[:6] == ("nft", "add", "rule", "inet", "firewalld",
                                                                          "nat_POSTROUTING")
    assert firewall.masquerade(docker, 4, "10.2.0.0/24", "eth0")[0] == "iptables"    # no nat chain: iptables'
    fib = rule(ruleset("expressions"), "c", 15)
    assert nft.loosen(fib) == [("nft", "replace", "rule", "inet", "t", "c", "handle", "15",
                                "meta nfproto ipv6 fib saddr . mark oif missing drop")]


def test_fault_commands_of_nft():
    nodes = {"gw"}
    steps = _steps(Path("x.faults.toml"), "k", [{"node": "gw", "command": "nft add chain inet f c { type filter hook "
                                                "input priority 0 ; policy drop ; } && nft add rule inet f c iifname eth* drop"}],
                   nodes)
    assert steps[0].argv[-3:] == ("drop", ";", "}") and steps[1].argv[-2] == "eth*"
    for bad in ("nft -f /etc/passwd", "nft add rule inet f c drop ; include x", "iptables -A INPUT -j DROP ; x"):
        with pytest.raises(LabFileError):
            _steps(Path("x.faults.toml"), "k", [{"node": "gw", "command": bad}], nodes)


# --- lab files ------------------------------------------------------------------------------

def test_lab_file_nft_items_become_nft_commands():
    from wgtrace.model.commands import stage_commands
    from wgtrace.model.labfile import load_lab
    lab = load_lab("nftables")
    cmds = [c for i in range(len(lab.stages)) for c in stage_commands(lab, i) if c.node == "gw2" and c.argv[0] == "nft"]
    assert cmds[0].argv == ("nft", "add table inet filter")
    assert cmds[1].text == "nft 'add chain inet filter input { type filter hook input priority filter ; policy drop ; }'"
    assert ("nft", 'add rule ip docker docker-user iifname "eth1" oifname "wg0" accept') in [c.argv for c in cmds]
    assert len(cmds) == len(lab.nodes["gw2"].nft)


def test_braces_with_a_space_are_not_parameters():
    from wgtrace.model.expand import expand
    data = {"params": {"n": 3}, "nodes": {"a{n}": {"nft": [{"rule": "add rule inet f c tcp dport { 22, {n}0 } drop"}]}}}
    out, _ = expand(data)
    assert out["nodes"]["a3"]["nft"][0]["rule"] == "add rule inet f c tcp dport { 22, 30 } drop"
