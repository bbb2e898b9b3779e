"""Guided lab mode: the student types the stage's commands; the lab decides when it is done.

A stage is passed when every item the lab file gives it holds in the kernel (stagecheck)
and the probe stops where the lesson says it now stops (or gets through). What was typed
is never compared with the document's text, so any correct command passes.
This module is the engine; the CLI gives it a prompt. Output goes through ``say``.
"""
from __future__ import annotations

from typing import Callable

from ..diagnose.run import Diagnosis, diagnose
from ..errors import LabStateError
from ..lab.build import lab_up
from ..opener import open_network
from ..lab.runtime import load_state
from ..lab.teardown import lab_down
from ..nodes.base import Node
from ..model.commands import stage_commands
from ..model.labfile import load_lab
from ..teach.lessons import Lesson, matches
from ..texts import say
from .progress import Record, load_record
from .stagecheck import stage_checks


class GuidedLesson:
    def __init__(self, lesson: Lesson, say: Callable[[str, str], None], restart: bool = False,
                 name: str | None = None) -> None:
        self.lesson = lesson
        self.say = say                     # say(kind, text): kind in info|ok|bad|cmd|out
        self.lab = load_lab(lesson.lab, rename=name)
        saved = load_record("lesson", lesson.name, self.lab.name)
        self.restart = restart
        self.saved = saved
        rec = None if restart else saved
        self.rec = rec or Record("lesson", lesson.name, self.lab.name, lesson.lang, lab_file=self.lab.path)
        self.rec.lang = lesson.lang
        self.node = ""
        self.done = False

    # --- lab --------------------------------------------------------------------
    def t(self, key: str, **params) -> str:
        return say(f"guided.{key}", self.lesson.lang, **params)

    def start(self) -> None:
        st = load_state(self.lab.name)
        want = self.rec.stage - 1
        if st is None or not st.complete or st.stage != want:
            if st is not None:
                # Only a lab this lesson built may be rebuilt; anything else is somebody's work.
                ours = self.saved is not None and st.started == self.saved.lab_started
                if not ours:
                    raise LabStateError(f"lab {self.lab.name!r} is already up and this lesson did not build it: "
                                        f"run 'wgtrace lab down {self.lab.name}', or use --name.")
                lab_down(self.lab.name)
            self.rec.lab_started = lab_up(self.lab, max(want, 0)).started
        self.rec.save()
        self._enter_stage()

    @property
    def state(self):
        return load_state(self.lab.name)

    def handles(self) -> dict[str, Node]:
        st = self.state
        return {n: st.node(n) for n in st.nodes}

    @property
    def index(self) -> int:
        return self.rec.stage

    def _enter_stage(self) -> None:
        if self.index >= len(self.lab.stages):
            self.done = True
            self.say("ok", self.t("all-passed"))
            return
        st = self.lesson.stages[self.index]
        cmds = stage_commands(self.lab, self.index, self.state.keys)
        self.node = cmds[0].node if cmds else self.lesson.probe(self.index).src
        self.say("info", f"[{self.index}/{len(self.lab.stages) - 1}] {st.name}: {st.goal}")

    def prompt(self) -> str:
        return f"[{self.lesson.stages[min(self.index, len(self.lesson.stages) - 1)].name}] {self.node}# "

    # --- one line of input ------------------------------------------------------
    def handle(self, line: str) -> None:
        line = line.strip()
        if not line:
            # Enter alone: check, for a student who typed the commands in `wgtrace shell` elsewhere
            self._check(quiet=False)
            return
        word = line.split()[0]
        if line.startswith("@"):
            return self._switch(line[1:].strip())
        builtin = getattr(self, f"cmd_{word}", None)
        if builtin and len(line.split()) == 1:
            self.rec.log(word)
            return builtin()
        node = self.node
        if "# " in line and line.split("# ", 1)[0] in self.lab.nodes:   # pasted "bcc# ip route …"
            node, line = line.split("# ", 1)
        self.rec.log("command", node=node, command=line)
        r = self.handles()[node].run(["sh", "-c", line], timeout=60)
        for text, kind in ((r.stdout, "out"), (r.stderr, "bad")):
            if text.strip():
                self.say(kind, text.rstrip())
        self._check(quiet=True)

    def _switch(self, node: str) -> None:
        if node in self.lab.nodes:
            self.node = node
        else:
            self.say("bad", self.t("no-node", node=node, nodes=", ".join(self.lab.nodes)))

    # --- built-ins ----------------------------------------------------------------
    def cmd_help(self) -> None:
        self.say("info", self.t("help"))

    def cmd_show(self) -> None:
        for c in stage_commands(self.lab, self.index, self.state.keys):
            self.say("cmd", f"{c.node}# {c.text}")

    def cmd_hint(self) -> None:
        d = self._diagnose()
        v = d.verdict
        if d.reachable:
            self.say("info", d.explanation)
        else:
            s = v.stop
            where = f"{s.node} {s.iface or ''} ({s.phase}). " if s else ""
            self.say("info", f"{v.cause}: {where}{d.trace.story_text(self.lesson.lang)}")
            self.say("info", d.explanation)
        missing = [c for c in stage_checks(self.lab, self.index, self.handles(), self.state.keys) if not c.ok]
        for c in missing:
            self.say("info", self.t("missing") + f"{c.node}: {c.what}")

    def cmd_check(self) -> None:
        self._check(quiet=False)

    def cmd_trace(self) -> None:
        d = self._diagnose()
        for h in d.trace.hops:
            if h.layer == "inner":
                self.say("out", f"{h.node:<15} {h.iface:<7} {h.dir:<3} {h.summary}")
        self.say("info", d.trace.story_text(self.lesson.lang))

    def cmd_status(self) -> None:
        passed = ", ".join(self.rec.passed) or "-"
        self.say("info", self.t("status", stage=self.index, passed=passed))

    def cmd_skip(self) -> None:
        """Let the lab type the stage's commands (the student watches). One by one, and a
        refusal is shown, not fatal: the student may have typed some of them already."""
        for c in stage_commands(self.lab, self.index, self.state.keys):
            self.say("cmd", f"{c.node}# {c.text}")
            r = self.handles()[c.node].run(["sh", "-c", c.text])
            if r.returncode != 0:
                self.say("bad", (r.stderr or r.stdout).strip().splitlines()[-1:][0] if (r.stderr or r.stdout).strip()
                         else f"exit status {r.returncode}")
        self._check(quiet=False)

    def cmd_back(self) -> None:
        self.rec.stage = max(1, self.index - 1)
        self._rebuild()

    def cmd_reset(self) -> None:
        self._rebuild()

    def cmd_quit(self) -> None:
        self.done = True

    cmd_exit = cmd_quit

    def run_prompt(self, read: Callable[[str], str], on_error: Callable[[str], None]) -> None:
        """The prompt loop: one line at a time until quit or end of input; Ctrl-C drops the line."""
        from ..errors import WgtraceError
        while not self.done:
            try:
                line = read(self.prompt())
            except EOFError:
                break
            except KeyboardInterrupt:
                self.say("info", "")
                continue
            try:
                self.handle(line)
            except WgtraceError as e:
                on_error(e.message)
        resume = f"wgtrace lesson {self.lesson.name}" + (f" --name {self.lab.name}" if self.lab.name != self.lesson.lab else "")
        self.say("info", self.t("saved", resume=resume, lab=self.lab.name))

    def _rebuild(self) -> None:
        lab_down(self.lab.name)
        self.rec.lab_started = lab_up(self.lab, self.index - 1).started
        self.rec.save()
        self._enter_stage()

    # --- the goal -----------------------------------------------------------------
    def _diagnose(self) -> Diagnosis:
        with open_network(lab=self.lab.name) as net:
            p = self.lesson.probe(self.index)
            d = diagnose(net, p.src, p.dst, tcp=p.tcp, lang=self.lesson.lang, family=p.family)
        self.rec.log("diagnosis", stage=self.index, **diagnosis_record(d))
        return d

    def _check(self, quiet: bool) -> bool:
        checks = stage_checks(self.lab, self.index, self.handles(), self.state.keys)
        ok = [c for c in checks if c.ok]
        if len(ok) < len(checks):
            if not quiet:
                for c in checks:
                    self.say("ok" if c.ok else "bad", f"{'✔' if c.ok else '✘'} {c.node}: {c.what}")
            else:
                self.say("info", f"{len(ok)}/{len(checks)}")
            return False
        st = self.lesson.stages[self.index]
        d = self._diagnose()
        if not matches(st.expect, d.verdict.cause, d.verdict.stop):
            self.say("bad", self.t("not-as-expected", cause=d.verdict.cause))
            return False
        state = self.state
        state.stage, state.stage_name = self.index, self.lab.stages[self.index].name
        state.save()
        self.say("ok", self.t("passed") + st.observe)
        self.say("info", st.why)
        first = self.rec.events[0]["t"] if self.rec.events else self.rec.started
        prev = max([v["at"] for v in self.rec.passed.values()] or [first])
        import time
        self.rec.passed[st.name] = {"at": time.time(), "seconds": round(time.time() - prev, 1)}
        self.rec.stage = self.index + 1
        if self.rec.stage >= len(self.lab.stages):
            self.rec.finished = time.time()
        self.rec.save()
        self._enter_stage()
        return True


def diagnosis_record(d: Diagnosis) -> dict:
    """What a progress record keeps of a diagnosis (for reports)."""
    s = d.verdict.stop
    return {"cause": d.verdict.cause, "stop": s.to_json() if s else None, "path": d.trace.inner_path("request"),
            "story": d.trace.story_text(d.lang), "nodes": list(dict.fromkeys(h.node for h in d.trace.hops))}
