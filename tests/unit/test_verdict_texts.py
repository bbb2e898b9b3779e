"""Verdict rules on hand-made facts, the text catalogues, lesson files."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from wgtrace.diagnose.context import Context
from wgtrace.diagnose.facts import NodeFacts
from wgtrace.diagnose import firewall
from wgtrace.diagnose.firewall import Firewall, iptables
from wgtrace.diagnose.rules import decide
from wgtrace.diagnose.verdict import CAUSES, Fix, Stop
from wgtrace.nodes.base import LinkInfo, RouteLookup
from wgtrace.model.labfile import load_lab
from wgtrace.teach.lessons import load_lesson, matches
from wgtrace.texts import LANGS, catalogue, explain, say
from wgtrace.trace.path import Hop, Place, Story, TraceResult

LAB = load_lab("seed")
SAVE = """*filter
:INPUT ACCEPT [10:800]
:FORWARD DROP [3:252]
:OUTPUT ACCEPT [9:700]
[5:420] -A FORWARD -i wg0 -o ens192 -j ACCEPT
COMMIT
*nat
:POSTROUTING ACCEPT [1:84]
[2:168] -A POSTROUTING -s 192.168.2.0/24 -o ens192 -j MASQUERADE
COMMIT
"""


def test_iptables_counters_and_what_moved():
    before = iptables.parse(SAVE)
    after = iptables.parse(SAVE.replace(":FORWARD DROP [3:252]", ":FORWARD DROP [4:336]"))
    moved = firewall.diff(before, after)
    assert [(r.chain, r.text, r.verdict, r.policy, n) for r, n in moved] == [("FORWARD", "policy DROP", "drop", True, 1)]
    masq = next(r for r in before if r.verdict == "masquerade")
    assert masq.hook == "postrouting" and masq.match("oif") == "ens192"
    assert firewall.undo(masq) == ("iptables", "-t", "nat", "-D", "POSTROUTING", "-s", "192.168.2.0/24", "-o",
                                   "ens192", "-j", "MASQUERADE")
    assert firewall.undo(moved[0][0]) == ("iptables", "-t", "filter", "-P", "FORWARD", "ACCEPT")
    assert Firewall(before, moved).dropped("forward", 4) == moved


def _hop(node, iface, d, src, dst, role="request", t=0.0):
    return Hop(node, iface, d, src, dst, f"IP {src} > {dst}: ICMP echo request, id 1, seq 1, length 64", t, role,
               length=84, proto=1)


def _link(name, addr=None, up=True, mtu=1500):
    return LinkInfo(name, up, mtu, [addr] if addr else [])


def _ctx(hops, facts, routes=None, phase="request"):
    last = hops[-1]
    res = TraceResult("home", "target", {"kind": "icmp", "dst_ip": "10.10.13.61", "port": None, "size": None},
                      False, hops, Place(last.node, last.iface, phase, last.dir), stop_phase=phase,
                      story=Story("entered-never-left", {"phase": ("@", "phase.request"), "node": last.node,
                                                         "iface": last.iface}))
    facts = {n: facts.get(n, NodeFacts(n)) for n in LAB.nodes}
    return Context(LAB, res, facts, routes or {}, keys={"bcc": "B=", "home": "H=", "company": "C="})


def test_forwarding_off_is_forwarding_disabled_with_sysctl_fix():
    f = NodeFacts("bcc", sysctl={"net.ipv4.ip_forward": "0"}, links={"wg0": _link("wg0", "192.168.2.1/24", mtu=1420)})
    v = decide(_ctx([_hop("home", "wg0", "out", "192.168.2.2", "10.10.13.61"),
                     _hop("bcc", "wg0", "in", "192.168.2.2", "10.10.13.61", t=1)], {"bcc": f}))
    assert v.cause == "forwarding-disabled" and v.stop == Stop("bcc", "wg0", "request")
    assert v.fix == [Fix("bcc", ("sysctl", "-w", "net.ipv4.ip_forward=1"))]
    assert v.fix[0].to_json() == {"node": "bcc", "command": "sysctl -w net.ipv4.ip_forward=1"}


def test_forward_policy_drop_is_forward_filtered():
    rules = iptables.parse(SAVE)
    policy = next(r for r in rules if r.policy and r.chain == "FORWARD")
    f = NodeFacts("company", sysctl={"net.ipv4.ip_forward": "1"}, fw=Firewall(rules, [(policy, 1)]))
    routes = {("company", "10.10.13.61", "192.168.2.2", "wg0"): RouteLookup(True, "ens192")}
    v = decide(_ctx([_hop("company", "wg0", "in", "192.168.2.2", "10.10.13.61")], {"company": f}, routes))
    assert v.cause == "forward-filtered"
    assert [x.command for x in v.fix] == ["iptables -t filter -A FORWARD -i wg0 -o ens192 -j ACCEPT"]


def test_every_cause_has_a_text_in_every_language():
    for lang in LANGS:
        assert set(catalogue(lang)["cause"]) == set(CAUSES), lang
    assert "{" not in explain("forward-filtered", {"node": "bcc", "rule": "policy DROP"}, "zh")


def test_catalogues_have_the_same_keys_and_placeholders():
    import string
    en = catalogue("en")
    for lang in LANGS:
        other = catalogue(lang)
        assert set(other) == set(en), lang
        for section, texts in en.items():
            assert set(other[section]) == set(texts), (lang, section)
            for key, text in texts.items():
                names = {f[1] for f in string.Formatter().parse(text) if f[1]}
                theirs = {f[1] for f in string.Formatter().parse(other[section][key]) if f[1]}
                assert theirs <= names | {"phase"}, (lang, section, key, theirs - names)


def test_a_story_is_words_only_when_shown():
    s = Story("entered-never-left", {"phase": ("@", "phase.reply"), "node": "bcc", "iface": "wg0"})
    assert s.text("en") == "the reply was seen entering bcc on wg0, never left bcc."
    assert s.text("zh") == "回包在 bcc 的 wg0 上被看到进入,之后没有离开 bcc。"
    assert say("no.such.key") == "no.such.key"


@pytest.mark.parametrize("lang", LANGS)
def test_lesson_files_follow_the_lab_and_agree(lang):
    lesson = load_lesson("seed", lang)
    assert [s.name for s in lesson.stages] == [s.name for s in LAB.stages]
    other = load_lesson("seed", "en")
    assert [s.expect for s in lesson.stages] == [s.expect for s in other.stages]
    for s in lesson.stages:
        assert s.goal and s.observe and s.why
        assert s.expect.get("reachable") or s.expect["cause"] in CAUSES


def test_expect_matching():
    assert matches({"reachable": True}, "reachable", None)
    assert matches({"cause": "mtu", "node": "bcc", "direction": "request"}, "mtu", Stop("bcc", "wg0", "request"))
    assert not matches({"cause": "mtu", "node": "bcc"}, "mtu", Stop("home", None, "request"))


def test_fault_catalogue_is_well_formed():
    data = tomllib.loads((Path(LAB.path).with_name("seed.faults.toml")).read_text())
    names = [f["name"] for f in data["fault"]]
    assert len(names) == len(set(names))
    for f in data["fault"]:
        assert f["expect"]["cause"] in CAUSES and f["expect"]["node"] in LAB.nodes
        assert all(i["node"] in LAB.nodes for i in f["inject"])
