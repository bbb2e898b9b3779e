"""Every lesson's files: they follow their lab's stages, both languages say the same things in
their own words, nothing is left unfilled; the probes a lesson names exist; an exercise's probes."""
from __future__ import annotations

import re

import pytest

from wgtrace.addr import family
from wgtrace.diagnose.verdict import CAUSES
from wgtrace.errors import LabFileError
from wgtrace.model.faults import load_faults
from wgtrace.model.labfile import available_labs, load_lab
from wgtrace.teach import lessons as lessons_mod
from wgtrace.teach.exercise import default_probe, probes_of
from wgtrace.teach.lessons import Probe, available_lessons, load_lesson
from wgtrace.texts import LANGS

LESSONS = available_lessons()
CASES = [(n, lang) for n in LESSONS for lang in LANGS]
CJK = re.compile(r"[\u4e00-\u9fff]")
FIELDS = ("goal", "observe", "why", "note")


def _texts(lesson):
    yield "title", lesson.title
    yield "intro", lesson.intro
    for s in lesson.stages:
        for f in FIELDS:
            yield f"{s.name}.{f}", getattr(s, f)


@pytest.mark.parametrize("lab", available_labs())
def test_every_stage_of_a_lab_types_something_on_its_own_nodes(lab):
    from wgtrace.model.commands import stage_commands
    model = load_lab(lab)
    for i in range(1, len(model.stages)):
        cmds = stage_commands(model, i)
        assert cmds and {c.node for c in cmds} <= set(model.nodes), model.stages[i].name


def test_every_lab_has_a_lesson():
    assert set(available_labs()) <= {load_lesson(n).lab for n in LESSONS}, set(available_labs()) - set(LESSONS)


@pytest.mark.parametrize("name, lang", CASES, ids=[f"{n}-{l}" for n, l in CASES])
def test_a_lesson_follows_its_lab_and_says_what_english_says(name, lang):
    lesson, en = load_lesson(name, lang), load_lesson(name, "en")
    lab = load_lab(lesson.lab)
    assert [s.name for s in lesson.stages] == [s.name for s in lab.stages]
    assert [s.expect for s in lesson.stages] == [s.expect for s in en.stages]
    for s, e in zip(lesson.stages, en.stages):
        assert s.goal and s.observe and s.why, s.name
        assert bool(s.note) == bool(e.note), (s.name, "a note in one language only")
        if s.expect.get("reachable"):
            assert set(s.expect) == {"reachable"}
        else:
            assert s.expect["cause"] in CAUSES and s.expect["node"] in lab.nodes, s.expect
            assert s.expect.get("direction") in ("request", "reply"), s.expect
    assert lesson.stages[-1].expect == {"reachable": True}, "a lesson ends with the network working"


@pytest.mark.parametrize("name, lang", CASES, ids=[f"{n}-{l}" for n, l in CASES])
def test_lesson_texts_are_written_out(name, lang):
    for where, text in _texts(load_lesson(name, lang)):
        if not text:
            continue
        assert not re.search(r"[{}]|\bTODO\b|\bXXX\b|<[a-z-]+>|\.\.\.$", text), (where, text[:80])
        # natural Chinese in zh, no Chinese in en
        assert bool(CJK.search(text)) == (lang == "zh"), (where, text[:80])


@pytest.mark.parametrize("name", LESSONS)
def test_a_lessons_probes_name_its_nodes(name):
    lesson = load_lesson(name)
    lab = load_lab(lesson.lab)
    probes = [lesson.probe(i) for i in range(len(lesson.stages))]
    for p in probes:
        for end in (p.src, p.dst):
            assert end in lab.nodes or family(end), (name, end)
    assert lesson.probe(0) == Probe(lesson.src, lesson.dst)
    for stage, p in lesson.probes.items():
        i = [s.name for s in lesson.stages].index(stage)
        assert lesson.probe(i) == p and p != Probe(lesson.src, lesson.dst)


def test_a_stage_probe_for_a_stage_the_lesson_does_not_have(tmp_path, monkeypatch):
    d = tmp_path / "x"
    d.mkdir()
    (d / "lesson.toml").write_text('lab = "seed"\nprobe = { src = "home", dst = "target" }\n'
                                   '[probes]\nnope = { src = "home", dst = "bcc" }\n')
    (d / "en.toml").write_text('title = "t"\n[[stage]]\nname = "base"\nexpect = { reachable = true }\n')
    monkeypatch.setattr(lessons_mod, "LESSONS_DIR", tmp_path)
    with pytest.raises(LabFileError, match="no stage 'nope'"):
        load_lesson("x")
    (d / "lesson.toml").write_text('lab = "seed"\nprobe = { src = "home" }\n')
    with pytest.raises(LabFileError, match="needs src and dst"):
        load_lesson("x")


def test_an_exercise_is_graded_by_the_pairs_that_show_its_faults():
    lab = load_lab("hub")
    faults = {f.name: f for f in load_faults(lab.path, lab.nodes)}
    src, dst, tcp = default_probe(lab)
    assert probes_of(lab, []) == [{"src": src, "dst": dst}]           # no service on the hub's spoke
    got = probes_of(lab, [faults["spoke2-lan-down"], faults["relay-sshd-stopped"], faults["h1-gateway-typo"]])
    assert got == [{"src": src, "dst": dst}, {"src": "h1", "dst": "h2"},
                   {"src": "h1", "dst": "10.99.0.1", "tcp": 22}]
    seed = load_lab("seed")
    assert probes_of(seed, []) == [{"src": "home", "dst": "target"}, {"src": "home", "dst": "target", "tcp": 22}]


def test_a_policy_routing_rule_is_found_in_ip_rule_show():
    from wgtrace.model.lab import IpRule
    from wgtrace.teach.stagecheck import rule_matches
    shown = ["0:\tfrom all lookup local", "32764:\tfrom all lookup main suppress_prefixlength 0",
             "32765:\tnot from all fwmark 0xca6c lookup 51820", "32766:\tfrom all lookup main"]
    full = IpRule("51820", fwmark=51820, invert=True)
    suppress = IpRule("main", suppress_prefixlength=0)
    assert [any(rule_matches(r, l) for l in shown) for r in (full, suppress)] == [True, True]
    assert not any(rule_matches(IpRule("51820", fwmark=51820), l) for l in shown)      # "not" matters
    assert not any(rule_matches(IpRule("main", suppress_prefixlength=1), l) for l in shown)
    assert not rule_matches(IpRule("51820", fwmark=51820, invert=True, priority=100), shown[2])


def test_an_nft_rule_is_found_in_its_chains_listing():
    from wgtrace.teach.stagecheck import nft_listed
    listing = """table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname "eth1" accept
		ct state invalid drop
		meta l4proto { icmp, ipv6-icmp } accept
		udp dport 51820 counter packets 3 bytes 444 accept # handle 7
	}
}"""
    for rule in ('udp dport 51820 counter accept', 'iifname "eth1" accept', "ct state { invalid } drop",
                 "meta l4proto { icmp, ipv6-icmp } accept", "ct state established,related accept"):
        assert nft_listed(rule, listing), rule
    assert not nft_listed('iifname "eth2" accept', listing)
    assert not nft_listed("udp dport 51820 accept", listing)          # the counter is part of the rule
