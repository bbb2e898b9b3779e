"""The walkthrough, the guided mode and the course tools, end to end on real labs."""
from __future__ import annotations

import os
import re
import sys

import pytest

from wgtrace.teach.lessons import load_lesson
from wgtrace.teach.walk import walk


def test_walk_yes_cli_english(lab_factory, cli):
    name = lab_factory.fresh_name()
    r = cli("walk", "--yes", "--name", name, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "the lesson says otherwise" not in r.stdout
    assert r.stdout.count("as the lesson says") == 12
    assert "home.wg0 -> bcc.wg0 -> bcc.wg0 -> company.wg0 -> company.ens192 -> target.ens192" in \
        re.sub(r"\s+", " ", r.stdout)
    assert "TCP port 22: reachable" in r.stdout


def test_every_stage_of_the_chinese_lesson_holds(lab_factory):
    lesson = load_lesson("seed", "zh")
    name = lab_factory.fresh_name()
    res = walk(lesson, name=name)
    bad = [(s.name, s.diagnosis.verdict.cause, s.diagnosis.verdict.stop) for s in res.stages if not s.agrees]
    assert not bad, bad
    assert len(res.stages) == len(lesson.stages) and res.ok


pexpect = pytest.importorskip("pexpect")


@pytest.mark.lab
def test_guided_mode_typed_commands_wrong_command_hint_and_resume(lab_factory, tmp_path):
    name = lab_factory.fresh_name()
    env = {**os.environ, "WGTRACE_STATE_DIR": str(tmp_path), "COLUMNS": "250", "TERM": "dumb"}
    argv = ["-m", "wgtrace", "lesson", "seed", "--name", name]
    child = pexpect.spawn(sys.executable, argv + ["--restart"], env=env, encoding="utf-8", timeout=60,
                          dimensions=(50, 250))
    try:
        prompt = r"\[([a-z0-9-]+)\] ([a-z-]+)# "

        def at_prompt() -> str:
            child.expect(prompt)
            return child.match.group(1)

        def stage_commands() -> list[str]:
            child.sendline("show")
            child.expect(prompt)
            lines = [l.strip() for l in child.before.splitlines()]
            return [l for l in lines if re.match(r"^[a-z-]+# ", l)]

        assert at_prompt() == "wg0"
        # stages 1-2: type what `show` prints, as the document types it
        for stage in ("wg0", "peers"):
            for line in stage_commands():
                child.sendline(line)
                child.expect(prompt)
        assert child.match.group(1) == "home-route"
        # a wrong command: a route for the wrong network does not pass the stage
        child.sendline("home# ip route add 10.10.99.0/24 via 192.168.2.1 dev wg0")
        assert at_prompt() == "home-route"
        child.sendline("hint")
        child.expect(prompt)
        assert "route-missing" in child.before and "10.10.13.0/24" in child.before
        # a different but correct command passes: no `via`
        child.sendline("home# ip route add 10.10.13.0/24 dev wg0")
        child.expect("passed")
        assert at_prompt() == "home-allowed-ips"
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    # resume where the student stopped, then finish every stage by typing the shown commands
    child = pexpect.spawn(sys.executable, argv, env=env, encoding="utf-8", timeout=60, dimensions=(50, 250))
    try:
        assert at_prompt() == "home-allowed-ips"
        finished = False
        for _ in range(8):
            for line in stage_commands():
                if "sysctl -w net.ipv4.ip_forward=1" in line and line.startswith("bcc#"):
                    line = "bcc# echo 1 > /proc/sys/net/ipv4/ip_forward"     # the document's way
                child.sendline(line)
                if child.expect([prompt, "All stages passed"]) == 1:
                    finished = True
                    break
            if finished:
                break
        assert finished
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_exercise_fixed_seed_solved_by_the_diagnosis_then_check_passes(lab_factory, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("WGTRACE_STATE_DIR", str(tmp_path))
    name = lab_factory.fresh_name()
    r = cli("exercise", "--seed", "7", "--faults", "3", "--name", name)
    assert r.returncode == 0, r.stderr
    assert cli("check", "--lab", name).returncode == 1
    r = cli("diagnose", "home", "target", "--lab", name, "--fix")
    assert r.returncode == 0, r.stdout
    r = cli("diagnose", "home", "target", "--tcp", "22", "--lab", name, "--fix")   # the exercise asks for ping and TCP 22
    assert r.returncode == 0, r.stdout
    assert cli("check", "--lab", name).returncode == 0
    md, html = tmp_path / "r.md", tmp_path / "r.html"
    assert cli("report", "--md", str(md), "--html", str(html)).returncode == 0
    text = md.read_text()
    assert "exercise seed 7, 3 fault(s)" in text and "data:image/svg+xml;base64," in text
    fix_rows = [l for l in text.splitlines() if l.startswith("| ") and "| fix |" in l]
    assert fix_rows and all("# " in row for row in fix_rows)         # the row says what ran
    assert "<svg" in html.read_text()


def test_guided_stage_typed_in_another_shell_passes_on_enter(lab_factory, tmp_path, monkeypatch):
    from wgtrace.teach.guided import GuidedLesson
    from wgtrace.model.commands import stage_commands
    monkeypatch.setenv("WGTRACE_STATE_DIR", str(tmp_path))
    said = []
    g = GuidedLesson(load_lesson("seed", "en"), lambda k, t: said.append((k, t)), True,
                     lab_factory.fresh_name())
    g.start()
    assert g.index == 1
    for c in stage_commands(g.lab, 1, g.state.keys):     # as if typed in `wgtrace shell NODE`
        assert g.handles()[c.node].run(["sh", "-c", c.text]).returncode == 0
    g.handle("")                                        # Enter at the lesson prompt: check
    assert g.index == 2 and "wg0" in g.rec.passed
