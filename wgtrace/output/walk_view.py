"""Terminal view of the walkthrough, drawn from its events: stage, commands, what the probe did, why."""
from __future__ import annotations

from rich.console import Console
from rich.text import Text

from ..teach.lessons import Lesson
from ..texts import say, words


class WalkView:
    def __init__(self, console: Console, lesson: Lesson) -> None:
        self.c = console
        self.lesson = lesson
        self.lang = lesson.lang
        self.w = words("walk", lesson.lang)

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
                self.c.print(Text.assemble("  ", (f"{node}# ", "cyan"), text), soft_wrap=True)

    def on_observed(self, sr) -> None:
        w, d = self.w, sr.diagnosis
        st = self.lesson.stages[sr.index]
        t = d.trace
        kind = f"{t.probe['kind'].upper()} {t.probe['port']}" if t.probe.get("port") else "ping"
        self.c.print(Text(f"{w['probe']}: {t.src} -> {t.dst} ({t.probe['dst_ip']}), {kind}", "bold"))
        last = None
        for h in t.hops:
            if h.layer != "inner":
                continue
            if h.node != last:
                self.c.print(Text("  # " + say("walk.on", self.lang, node=h.node), "dim"))
                last = h.node
            self.c.print(Text(f"    {h.iface:<7} {h.dir:<3}  {h.summary}", "green" if h.role == "reply" else ""),
                         highlight=False)
        if d.reachable:
            self.c.print(Text.assemble(("  ✔ ", "bold green"), (w["reachable"], "bold green"),
                                       f": {t.story_text(self.lang)}"))
        else:
            s = d.verdict.stop
            where = f"  {s.node} {s.iface or ''} ({s.phase})" if s else ""
            self.c.print(Text.assemble(("  ✘ ", "bold red"), f"{w['stops']}: ", (d.verdict.cause, "bold yellow"), where))
            self.c.print(Text(f"    {t.story_text(self.lang)}", "dim"))
        self.c.print(Text.assemble((f"{w['why']}: ", "bold"), st.observe + " " + st.why))
        if st.note:
            self.c.print(Text.assemble((f"{w['note']}: ", "bold"), st.note.strip()))
        if sr.agrees:
            self.c.print(Text(f"  ({w['agrees']}, {sr.seconds:.2f} s)", "dim"))
        else:
            self.c.print(Text(f"  ! {w['disagrees']}: {w['expected']} {st.expect}", "bold red"))

    def on_tcp(self, d) -> None:
        ok = d.reachable
        self.c.print(Text.assemble(("✔ " if ok else "✘ ", "bold green" if ok else "bold red"),
                                   f"{self.w['tcp']} {d.trace.probe['port']}: {d.verdict.cause}"))

    def on_done(self, res) -> None:
        self.c.print()
        if res.stages and res.stages[-1].diagnosis.reachable:
            self.c.print(Text.assemble((f"{self.w['path']}: ", "bold"),
                                       res.stages[-1].diagnosis.trace.inner_path("request")))
        self.c.print(Text(f"{self.w['total']} {res.seconds:.1f} s", "dim"))
