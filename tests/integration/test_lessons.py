"""Every lab's lesson and exercise on real labs (the seed's own are in test_walk.py).

For each lesson: `walk LESSON --yes` in both languages, every stage's probe stopping where the
lesson says (cause, node, direction) or getting through; the guided mode driven at a terminal
(commands typed as `show` prints them, one that changes nothing, a hint, a quit, serve's view of
the progress, a resume to the end). For each lab with a fault catalogue: an exercise solved by
the diagnosis alone. One lab per test, its stages advanced in place.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time

import pytest

from wgtrace.model.labfile import available_labs, find_lab
from wgtrace.teach.lessons import available_lessons, load_lesson
from wgtrace.texts import LANGS, say, words

LESSONS = [n for n in available_lessons() if n != "seed"]
EXERCISE_LABS = [n for n in available_labs() if n != "seed" and find_lab(n).with_name(f"{n}.faults.toml").is_file()]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("lesson", LESSONS)
def test_walk_yes_every_stage_as_the_lesson_says(lab_factory, cli, lesson, lang):
    les = load_lesson(lesson, lang)
    w = words("walk", lang)
    r = cli("walk", lesson, "--yes", "--lang", lang, "--name", lab_factory.fresh_name(), timeout=180)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    # one block per stage: its header, its probe, and whether the lab agreed with the lesson
    blocks = re.split(rf"\n{re.escape(w['stage'])} (\d+)/\d+ ", r.stdout)[1:]
    assert [int(n) for n in blocks[::2]] == list(range(len(les.stages)))
    wrong = []
    for i, (st, text) in enumerate(zip(les.stages, blocks[1::2])):
        p = les.probe(i)
        flat = re.sub(r"\s+", " ", text)
        assert text.lstrip().startswith(st.name + " ") and f"{w['probe']}: {p.src} -> {p.dst} " in text, text[:400]
        assert re.sub(r"\s+", " ", st.observe) in flat, (st.name, "the stage's observation is not shown")
        if f"({w['agrees']}," not in text or w["disagrees"] in text:
            wrong.append((st.name, st.expect, [l for l in text.splitlines() if "✘" in l or "✔" in l]))
    assert not wrong, wrong
    if les.tcp_port:
        assert f"{w['tcp']} {les.tcp_port}: reachable" in r.stdout


pexpect = pytest.importorskip("pexpect")
PROMPT = r"\[([a-z0-9-]+)\] ([a-z0-9-]+)# "


def other_way(line: str) -> str:
    """The same configuration, typed differently."""
    node, cmd = line.split("# ", 1)
    if m := re.fullmatch(r"sysctl -w (net\.[\w.-]+)=(\S+)", cmd):
        cmd = f"echo {m[2]} > /proc/sys/{m[1].replace('.', '/')}"
    elif m := re.fullmatch(r"(iptables .*?)-A (\S+) (.*)", cmd):
        cmd = f"{m[1]}-I {m[2]} 1 {m[3]}"
    elif cmd.startswith("ip route add "):
        cmd = "ip route replace " + cmd[len("ip route add "):]
    return f"{node}# {cmd}"


class Terminal:
    """`wgtrace lesson` at a terminal, as a student types into it."""

    def __init__(self, argv: list[str], env: dict) -> None:
        self.child = pexpect.spawn(sys.executable, argv, env=env, encoding="utf-8", timeout=90,
                                   dimensions=(50, 250))

    def at_prompt(self) -> str:
        self.child.expect(PROMPT)
        return self.child.match.group(1)

    def said(self, line: str) -> str:
        self.child.sendline(line)
        self.child.expect(PROMPT)
        return self.child.before

    def shown(self) -> list[str]:
        return [l.strip() for l in self.said("show").splitlines() if re.match(r"^\s*[a-z0-9-]+# ", l)]

    def do_stage(self, stage: str) -> str:
        """Type the stage's commands as `show` prints them, but the way another person might:
        a sysctl written into /proc, a rule inserted instead of appended, a route replaced
        instead of added. Return the prompt's stage after them. A probe that needs a
        handshake first may be asked again with Enter, as a student would."""
        for line in self.shown():
            self.child.sendline(other_way(line))
            if self.child.expect([PROMPT, "All stages passed"]) == 1:
                return ""
        now = self.child.match.group(1)
        for _ in range(5):
            if now != stage or "does not behave" not in self.child.before:
                break
            time.sleep(1)
            self.child.sendline("")
            if self.child.expect([PROMPT, "All stages passed"]) == 1:
                return ""
            now = self.child.match.group(1)
        return now

    def close(self) -> None:
        self.child.close(force=True)


@pytest.mark.lab
@pytest.mark.parametrize("lesson", LESSONS)
def test_guided_lesson_typed_hint_quit_serve_resume_and_report(lab_factory, cli, tmp_path, monkeypatch, lesson):
    from wgtrace.serve import labs, view
    les = load_lesson(lesson, "en")
    names = [s.name for s in les.stages]
    name = lab_factory.fresh_name()
    monkeypatch.setenv("WGTRACE_STATE_DIR", str(tmp_path))
    env = {**os.environ, "COLUMNS": "250", "TERM": "dumb"}
    argv = ["-m", "wgtrace", "lesson", lesson, "--name", name]
    half = len(names) // 2 + 1
    t = Terminal(argv + ["--restart"], env)
    try:
        assert t.at_prompt() == names[1]
        # a command that changes nothing passes nothing; the hint says what is still missing
        t.child.sendline("true")
        assert t.at_prompt() == names[1]
        assert say("guided.missing", "en") in t.said("hint")
        for i in range(1, half):
            assert t.do_stage(names[i]) == names[i + 1], f"stage {names[i]} did not pass: {t.child.before[-1500:]}"
        t.child.sendline("quit")
        t.child.expect(f"wgtrace lesson {lesson} --name {name}")
        t.child.expect(pexpect.EOF)
    finally:
        t.close()
    # the class page's view of that lab: a lesson at stage `half`, the stages before it passed
    r = labs.read(name)
    p = view.progress(labs.records(), name, r.started, len(r.model.stages) - 1)
    assert (p["kind"], p["name"], p["stage"], p["passed"], p["stages"]) == \
        ("lesson", lesson, half, half - 1, len(names) - 1), p
    rec = json.loads((tmp_path / f"lesson-{lesson}-{name}.json").read_text())
    assert list(rec["passed"]) == names[1:half]
    # resume where the student stopped and finish every stage
    t = Terminal(argv, env)
    try:
        assert t.at_prompt() == names[half]
        for i in range(half, len(names)):
            nxt = names[i + 1] if i + 1 < len(names) else ""
            assert t.do_stage(names[i]) == nxt, f"stage {names[i]} did not pass: {t.child.before[-1500:]}"
        t.child.expect(pexpect.EOF)
    finally:
        t.close()
    rec = json.loads((tmp_path / f"lesson-{lesson}-{name}.json").read_text())
    assert list(rec["passed"]) == names[1:] and rec["finished"]
    md = tmp_path / "r.md"
    assert cli("report", "--lesson", lesson, "--name", name, "--md", str(md)).returncode == 0
    rows = [l.split("|")[1].strip() for l in md.read_text().splitlines() if l.startswith("| ") and "| 20" in l]
    assert rows[:len(names) - 1] == names[1:], rows


@pytest.mark.parametrize("lab", EXERCISE_LABS)
def test_exercise_solved_by_the_diagnosis_then_check_passes(lab_factory, cli, tmp_path, monkeypatch, lab):
    monkeypatch.setenv("WGTRACE_STATE_DIR", str(tmp_path))
    name = lab_factory.fresh_name()
    seed = 11
    r = cli("exercise", lab, "--seed", str(seed), "--faults", "2", "--name", name, timeout=120)
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "exercise.json").read_text())
    assert len(rec["faults"]) == 2 and rec["probes"]
    flat = re.sub(r"\s+", " ", r.stdout)
    assert all(f"{p['src']} -> {p['dst']}" in flat for p in rec["probes"]), r.stdout
    assert cli("check", "--lab", name).returncode == 1
    for _ in range(3):              # a pair's fix may show the next fault on another pair
        for p in rec["probes"]:
            port = ["--tcp", str(p["tcp"])] if p.get("tcp") else ["--udp", str(p["udp"])] if p.get("udp") else []
            cli("diagnose", p["src"], p["dst"], *port, "--lab", name, "--fix", timeout=120)
        if cli("check", "--lab", name).returncode == 0:
            break
    else:
        pytest.fail(f"the diagnosis did not solve exercise {lab} seed {seed} ({rec['faults']})")
    rec = json.loads((tmp_path / "exercise.json").read_text())
    assert rec["finished"] and any(e["type"] == "fix" for e in rec["events"])
