"""Terminal view of a diagnosis: where, why, on what evidence, and the fix."""
from __future__ import annotations

from rich.console import Group
from rich.text import Text

from ..texts import say, words


def verdict_view(d, lang: str | None = None) -> Group:
    lang = d.lang if lang is None else lang
    v, t = d.verdict, d.trace
    w = words("view", lang)
    lines = []
    if d.reachable:
        lines.append(Text.assemble((f"{w['reachable']} ", "bold green"), f"{t.src} -> {t.dst} ({t.probe['dst_ip']})"))
        lines.append(Text(f"  {w['request']}: {t.inner_path('request')}", "dim"))
        if t.inner_path("reply"):
            lines.append(Text(f"  {w['reply']}:   {t.inner_path('reply')}", "dim"))
        for e in v.evidence:            # findings of a reachable probe (a leak around the tunnel)
            if e.key == "leak":
                lines.append(Text.assemble((f"  {w['note']}: ", "bold yellow"), e.detail(lang)))
        return Group(*lines)
    s = v.stop
    lines.append(Text.assemble((f"{w['stopped']} ", "bold red"), (v.cause, "bold yellow"), "  ",
                               f"{t.src} -> {t.dst} ({t.probe['dst_ip']})"))
    if s:
        lines.append(Text.assemble((f"  {w['where']}: ", "bold"), f"{s.node} {s.iface or ''} ({s.phase})"))
    lines.append(Text(f"  {t.story_text(lang)}", "dim"))
    lines.append(Text.assemble((f"  {w['why']}: ", "bold"), d.explanation))
    lines.append(Text(f"  {w['evidence']}:", style="bold"))
    for e in v.evidence:
        lines.append(Text(f"    [{e.node}] {e.kind}: {e.detail(lang)}"))
    if v.fix:
        lines.append(Text(f"  {w['fix']}:", style="bold"))
        for f in v.fix:
            lines.append(Text.assemble("    ", (f"{f.node}# ", "cyan"), f.command))
    else:
        lines.append(Text(f"  {w['fix']}: {w['no-fix']}", style="bold"))
    return Group(*lines)


def fix_step_view(step, lang: str) -> Group:
    w = words("view", lang)
    lines = [Text(f"── {w['round']} {step.n}", "bold"), verdict_view(step.diagnosis, lang)]
    for a in step.applied:
        ok = a["status"] == 0
        lines.append(Text.assemble(f"  {w['applied']} ", (f"{a['node']}# ", "cyan"), a["command"],
                                   (f"  {w['ok']}" if ok else f"  {w['failed']}: {a['output']}",
                                    "green" if ok else "red")))
    return Group(*lines)


def fix_run_view(run, lang: str) -> Text:
    """The end of a --fix run (its rounds were shown as they happened, as FixStep results)."""
    w = words("view", lang)
    return Text.assemble((w["reachable"] if run.reachable else w["not-reachable"],
                          "bold green" if run.reachable else "bold red"),
                         " " + say("view.after-rounds", lang, n=len(run.steps)))
