"""Terminal rendering of the walkthrough: stage, commands, what the probe did, why."""
from __future__ import annotations

from rich.console import Console
from rich.text import Text

from ..explain import story

from ..lesson import Lesson

WORDS = {
    "en": {"stage": "Stage", "goal": "Goal", "commands": "Commands", "nothing": "(nothing typed: the machines as they start)",
           "probe": "Probe", "stops": "stops", "why": "Why", "note": "Note", "agrees": "as the lesson says",
           "disagrees": "the lesson says otherwise", "reachable": "reachable", "path": "Request path",
           "tcp": "TCP port", "total": "Walkthrough finished in", "expected": "expected"},
    "zh": {"stage": "阶段", "goal": "目标", "commands": "命令", "nothing": "(未输入命令:机器的初始状态)",
           "probe": "探测", "stops": "停在", "why": "原因", "note": "补充", "agrees": "与课程所述一致",
           "disagrees": "与课程所述不符", "reachable": "可达", "path": "请求路径",
           "tcp": "TCP 端口", "total": "全部阶段用时", "expected": "课程预期"},
}


class WalkView:
    def __init__(self, console: Console, lesson: Lesson) -> None:
        self.c = console
        self.lesson = lesson
        self.w = WORDS.get(lesson.lang, WORDS["en"])

    def __call__(self, kind: str, data) -> None:
        getattr(self, f"on_{kind}", lambda d: None)(data)

    def on_stage(self, data) -> None:
        i, st, cmds = data
        w, n = self.w, len(self.lesson.stages) - 1
        self.c.print()
        self.c.rule(f"[bold]{w['stage']} {i}/{n}  {st.name}[/]", align="left")
        self.c.print(Text.assemble((f"{w['goal']}: ", "bold"), st.goal))
        self.c.print(Text(f"{w['commands']}:", "bold"))
        if i == 0 or not cmds:
            self.c.print(Text(f"  {w['nothing']}", "dim"))
        else:
            for node, text in cmds:
                self.c.print(Text.assemble("  ", (f"{node}# ", "cyan"), text))

    def on_observed(self, sr) -> None:
        w, d = self.w, sr.diagnosis
        st = self.lesson.stages[sr.index]
        t = d.trace
        self.c.print(Text(f"{w['probe']}: {t.src} -> {t.dst} ({t.probe['dst_ip']}), ping", "bold"))
        last = None
        for h in t.hops:
            if h.layer != "inner":
                continue
            if h.node != last:
                self.c.print(Text(f"  # on {h.node}" if self.lesson.lang != "zh" else f"  # 在 {h.node} 上", "dim"))
                last = h.node
            self.c.print(Text(f"    {h.iface:<7} {'out' if h.dir == 'out' else 'in ':<3}  {h.summary}",
                              "green" if h.role == "reply" else ""), highlight=False)
        if d.reachable:
            self.c.print(Text.assemble(("  ✔ ", "bold green"), (w["reachable"], "bold green"), f": {story(t, self.lesson.lang)}"))
        else:
            s = d.verdict.stop or {}
            self.c.print(Text.assemble(("  ✘ ", "bold red"), f"{w['stops']}: ", (d.verdict.cause, "bold yellow"),
                                       f"  {s.get('node')} {s.get('iface') or ''} ({s.get('direction')})"))
            self.c.print(Text(f"    {story(t, self.lesson.lang)}", "dim"))
        self.c.print(Text.assemble((f"{w['why']}: ", "bold"), st.observe + " " + st.why))
        if st.note:
            self.c.print(Text.assemble((f"{w['note']}: ", "bold"), st.note.strip()))
        if sr.agrees:
            self.c.print(Text(f"  ({w['agrees']}, {sr.seconds:.2f} s)", "dim"))
        else:
            self.c.print(Text(f"  ! {w['disagrees']}: {w['expected']} {st.expect}", "bold red"))

    def on_tcp(self, d) -> None:
        w = self.w
        ok = d.reachable
        self.c.print(Text.assemble(("✔ " if ok else "✘ ", "bold green" if ok else "bold red"),
                                   f"{w['tcp']} {d.trace.probe['port']}: {d.verdict.cause}"))

    def on_done(self, res) -> None:
        w = self.w
        self.c.print()
        if res.stages and res.stages[-1].diagnosis.reachable:
            self.c.print(Text.assemble((f"{w['path']}: ", "bold"),
                                       res.stages[-1].diagnosis.trace.inner_path("request")))
        self.c.print(Text(f"{w['total']} {res.seconds:.1f} s", "dim"))
