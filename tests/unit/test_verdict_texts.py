"""Verdict rules on hand-made facts, explanation texts, lesson files."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from wgtrace.evidence import Counter, NodeFacts, counter_diff, parse_iptables_save
from wgtrace.explain import explain, texts
from wgtrace.labfile import load_lab
from wgtrace.lesson import LANGS, load_lesson, matches
from wgtrace.path import Hop, Place, TraceResult
from wgtrace.verdict import CAUSES, Context, decide

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
    before = parse_iptables_save(SAVE)
    after = parse_iptables_save(SAVE.replace(":FORWARD DROP [3:252]", ":FORWARD DROP [4:336]"))
    moved = counter_diff(before, after)
    assert moved == [(Counter("filter", "FORWARD", "policy DROP", "DROP"), 1)]
    assert Counter("nat", "POSTROUTING", "-A POSTROUTING -s 192.168.2.0/24 -o ens192 -j MASQUERADE",
                   "MASQUERADE") in before


def _hop(node, iface, d, src, dst, role="request", t=0.0):
    return Hop(node, iface, d, src, dst, f"IP {src} > {dst}: ICMP echo request, id 1, seq 1, length 64", t, role,
               length=84)


def _ctx(hops, facts, routes=None, phase="request"):
    last = hops[-1]
    res = TraceResult("home", "target", {"kind": "icmp", "dst_ip": "10.10.13.61", "port": None, "size": None},
                      False, hops, Place(last.node, last.iface, last.dir, phase), stop_phase=phase)
    facts = {n: facts.get(n, NodeFacts(n)) for n in LAB.nodes}
    return Context(LAB, res, facts, routes or {}, {"bcc": "B=", "home": "H=", "company": "C="})


def test_forwarding_off_is_forwarding_disabled_with_sysctl_fix():
    f = NodeFacts("bcc", sysctl={"net.ipv4.ip_forward": "0"}, links={"wg0": {"up": True, "mtu": 1420, "addresses": []}})
    v = decide(_ctx([_hop("home", "wg0", "out", "192.168.2.2", "10.10.13.61"),
                     _hop("bcc", "wg0", "in", "192.168.2.2", "10.10.13.61", t=1)], {"bcc": f}))
    assert v.cause == "forwarding-disabled" and v.stop == {"node": "bcc", "iface": "wg0", "direction": "request"}
    assert v.fix == [{"node": "bcc", "command": "sysctl -w net.ipv4.ip_forward=1"}]


def test_forward_policy_drop_is_forward_filtered():
    f = NodeFacts("company", sysctl={"net.ipv4.ip_forward": "1"},
                  hits=[(Counter("filter", "FORWARD", "policy DROP", "DROP"), 1)])
    routes = {("company", "10.10.13.61", "192.168.2.2", "wg0"): {"ok": True, "dev": "ens192"}}
    v = decide(_ctx([_hop("company", "wg0", "in", "192.168.2.2", "10.10.13.61")], {"company": f}, routes))
    assert v.cause == "forward-filtered"
    assert v.fix == [{"node": "company", "command": "iptables -t filter -A FORWARD -i wg0 -j ACCEPT"}]


def test_every_cause_has_both_languages():
    t = texts()
    for lang in ("en", "zh"):
        assert set(t[lang]) == set(CAUSES), lang
    assert "{" not in explain("forward-filtered", {"node": "bcc", "rule": "policy DROP"}, "zh")


@pytest.mark.parametrize("lang", LANGS)
def test_lesson_files_follow_the_lab_and_agree(lang):
    lesson = load_lesson("seed", lang)
    assert [s.name for s in lesson.stages] == [s.name for s in LAB.stages]
    other = load_lesson("seed", "zh" if lang == "en" else "en")
    assert [s.expect for s in lesson.stages] == [s.expect for s in other.stages]
    for s in lesson.stages:
        assert s.goal and s.observe and s.why
        assert s.expect.get("reachable") or s.expect["cause"] in CAUSES


def test_expect_matching():
    assert matches({"reachable": True}, "reachable", None)
    assert matches({"cause": "mtu", "node": "bcc", "direction": "request"}, "mtu",
                   {"node": "bcc", "iface": "wg0", "direction": "request"})
    assert not matches({"cause": "mtu", "node": "bcc"}, "mtu", {"node": "home", "direction": "request"})


def test_fault_catalogue_is_well_formed():
    data = tomllib.loads((Path(LAB.path).with_name("seed.faults.toml")).read_text())
    names = [f["name"] for f in data["fault"]]
    assert len(names) == len(set(names))
    for f in data["fault"]:
        assert f["expect"]["cause"] in CAUSES and f["expect"]["node"] in LAB.nodes
        assert all(i["node"] in LAB.nodes for i in f["inject"])
