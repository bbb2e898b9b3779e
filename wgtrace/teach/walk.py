"""``wgtrace walk``: a lesson's walkthrough on a real lab, stage by stage.

For each stage: type its commands on the nodes, send the stage's probe (the lesson's, or the
stage's own), and read where it stops and why; the lesson's stated observation is compared
with the lab's.
Events go to ``on_event``; the CLI draws them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..diagnose.run import Diagnosis, diagnose
from ..errors import LabFileError
from ..lab.build import lab_up
from ..opener import open_network
from ..lab.stages import advance
from ..lab.teardown import lab_down
from ..model.commands import stage_commands
from ..model.labfile import load_lab
from ..teach.lessons import Lesson, matches


@dataclass
class StageResult:
    index: int
    name: str
    commands: list[tuple[str, str]]
    diagnosis: Diagnosis
    agrees: bool                       # the lesson's stated observation holds in the lab
    seconds: float


@dataclass
class WalkResult:
    lab: str
    stages: list[StageResult] = field(default_factory=list)
    tcp: Diagnosis | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.stages) and self.stages[-1].diagnosis.reachable and all(s.agrees for s in self.stages) \
            and (self.tcp is None or self.tcp.reachable)


def walk(lesson: Lesson, name: str | None = None, keep: bool = False,
         on_event: Callable[[str, object], None] = lambda k, d: None,
         pause: Callable[[int], bool] = lambda i: True) -> WalkResult:
    """Run the whole walkthrough; ``pause(i)`` returns False to stop early."""
    t0 = time.monotonic()
    lab = load_lab(lesson.lab, rename=name)
    if len(lesson.stages) != len(lab.stages) or any(a.name != b.name for a, b in zip(lesson.stages, lab.stages)):
        raise LabFileError(f"lesson {lesson.name!r} does not follow the stages of lab {lab.name!r}.")
    result = WalkResult(lab.name)
    state = lab_up(lab, 0, on_event=lambda k, d: on_event("build", (k, d)))
    try:
        for i, st in enumerate(lesson.stages):
            ts = time.monotonic()
            cmds = [(c.node, c.text) for c in stage_commands(lab, i, state.keys)]
            on_event("stage", (i, st, cmds))
            if i > 0:
                advance(state, lab, i)
            p = lesson.probe(i)
            with open_network(lab=state.lab) as net:
                d = diagnose(net, p.src, p.dst, tcp=p.tcp, lang=lesson.lang, family=p.family)
            sr = StageResult(i, st.name, cmds, d, matches(st.expect, d.verdict.cause, d.verdict.stop),
                             time.monotonic() - ts)
            result.stages.append(sr)
            on_event("observed", sr)
            if i < len(lesson.stages) - 1 and not pause(i):
                break
        if lesson.tcp_port and result.stages and result.stages[-1].diagnosis.reachable:
            with open_network(lab=state.lab) as net:
                result.tcp = diagnose(net, lesson.src, lesson.dst, tcp=lesson.tcp_port, lang=lesson.lang)
            on_event("tcp", result.tcp)
    finally:
        if not keep:
            lab_down(state.lab)
    result.seconds = time.monotonic() - t0
    on_event("done", result)
    return result
