"""Terminal rendering of a diagnosis: where, why, on what evidence, and the fix."""
from __future__ import annotations

from rich.console import Group
from rich.text import Text

from ..explain import story

from ..diagnose import Diagnosis, FixStep

HEAD = {"en": ("where", "why", "evidence", "fix", "no fix known", "reachable", "stopped"),
        "zh": ("位置", "原因", "证据", "修复", "没有已知的修复", "可达", "不通")}


def verdict_view(d: Diagnosis) -> Group:
    v, t = d.verdict, d.trace
    where, why, ev, fix, nofix, ok, stopped = HEAD.get(d.lang, HEAD["en"])
    lines = []
    if d.reachable:
        lines.append(Text.assemble((f"{ok} ", "bold green"), f"{t.src} -> {t.dst} ({t.probe['dst_ip']})"))
        lines.append(Text(f"  request: {t.inner_path('request')}", "dim"))
        if t.inner_path("reply"):
            lines.append(Text(f"  reply:   {t.inner_path('reply')}", "dim"))
        return Group(*lines)
    s = v.stop or {}
    lines.append(Text.assemble((f"{stopped} ", "bold red"), (v.cause, "bold yellow"), "  ",
                               f"{t.src} -> {t.dst} ({t.probe['dst_ip']})"))
    lines.append(Text.assemble((f"  {where}: ", "bold"), f"{s.get('node')} {s.get('iface') or ''} ({s.get('direction')})"))
    lines.append(Text(f"  {story(t, d.lang)}", "dim"))
    lines.append(Text.assemble((f"  {why}: ", "bold"), d.explanation))
    lines.append(Text(f"  {ev}:", style="bold"))
    for e in v.evidence:
        lines.append(Text(f"    [{e['node']}] {e['kind']}: {e['detail']}"))
    if v.fix:
        lines.append(Text(f"  {fix}:", style="bold"))
        for f in v.fix:
            lines.append(Text.assemble("    ", (f"{f['node']}# ", "cyan"), f["command"]))
    else:
        lines.append(Text(f"  {fix}: {nofix}", style="bold"))
    return Group(*lines)


def fix_step_view(step: FixStep, n: int) -> Group:
    lines = [Text(f"── round {n}", "bold")]
    lines.append(verdict_view(step.diagnosis))
    for a in step.applied:
        ok = a["status"] == 0
        lines.append(Text.assemble("  applied ", (f"{a['node']}# ", "cyan"), a["command"],
                                   ("  ok" if ok else f"  failed: {a['output']}", "green" if ok else "red")))
    return Group(*lines)
