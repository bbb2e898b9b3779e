"""A self-contained record of a lesson or an exercise: what was done, the verdicts, time spent,
and a picture of the lab with the probe's last path. Markdown (the picture as a data: URI) or HTML."""
from __future__ import annotations

import base64
import time
from html import escape

from ..model.labfile import load_lab
from ..teach.progress import Record
from .svg import topology_svg


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _last_diagnosis(rec: Record) -> dict | None:
    return next((e for e in reversed(rec.events) if e["type"] in ("diagnosis", "check")), None)


def build_report(rec: Record) -> dict:
    lab = load_lab(rec.lab_file or "seed", rename=rec.lab)
    last = _last_diagnosis(rec)
    path_nodes, stop = [], None
    if last:
        path_nodes = last.get("nodes") or [p.split(".")[0] for p in (last.get("path") or "").split(" -> ") if p]
        if last.get("cause") != "reachable" and last.get("stop"):
            stop = last["stop"]["node"]
    end = rec.finished or (rec.events[-1]["t"] if rec.events else rec.started)
    return {"rec": rec, "lab": lab, "svg": topology_svg(lab, lab.probe_src or next(iter(lab.nodes)), path_nodes, stop),
            "last": last, "minutes": (end - rec.started) / 60}


def markdown(rec: Record) -> str:
    r = build_report(rec)
    title = f"wgtrace {rec.kind} report: {rec.name}"
    lines = [f"# {title}", "", f"- lab: `{rec.lab}`; started {_when(rec.started)}; "
             f"time spent {r['minutes']:.1f} min"]
    if rec.kind == "exercise":
        lines.append(f"- exercise seed {rec.seed}, {len(rec.faults)} fault(s) injected: {', '.join(rec.faults)}")
    fixes = [e for e in rec.events if e["type"] == "fix"]
    if fixes:
        lines.append(f"- `diagnose --fix` used {len(fixes)} time(s)")
    last = r["last"]
    if last:
        verdict = "reachable" if last.get("cause") == "reachable" else \
            f"stopped: {last.get('cause')} at {(last.get('stop') or {}).get('node')}"
        lines.append(f"- last verdict: **{verdict}**")
    svg64 = base64.b64encode(r["svg"].encode()).decode()
    lines += ["", f"![the lab and the probe's last path](data:image/svg+xml;base64,{svg64})", ""]
    if rec.passed:
        lines += ["## Stages passed", "", "| stage | passed at | minutes on it |", "| --- | --- | --- |"]
        for name, v in rec.passed.items():
            lines.append(f"| {name} | {_when(v['at'])} | {v['seconds'] / 60:.1f} |")
        lines.append("")
    lines += ["## What happened", "", "| time | event | detail |", "| --- | --- | --- |"]
    for e in rec.events:
        detail = e.get("command") or e.get("story") or ", ".join(e.get("faults", [])) or ""
        if e["type"] in ("diagnosis", "check"):
            detail = f"{e.get('cause')}: {e.get('story', '')}"
        node = f"{e['node']}# " if e.get("node") else ""
        lines.append(f"| {_when(e['t'])} | {e['type']} | {node}{detail.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def html(rec: Record) -> str:
    r = build_report(rec)
    rows = []
    for e in rec.events:
        detail = e.get("command") or ", ".join(e.get("faults", [])) or ""
        if e["type"] in ("diagnosis", "check"):
            detail = f"{e.get('cause')}: {e.get('story', '')}"
        node = f"{e['node']}# " if e.get("node") else ""
        rows.append(f"<tr><td>{_when(e['t'])}</td><td>{escape(e['type'])}</td><td><code>{escape(node + detail)}</code></td></tr>")
    passed = "".join(f"<tr><td>{escape(n)}</td><td>{_when(v['at'])}</td><td>{v['seconds'] / 60:.1f}</td></tr>"
                     for n, v in rec.passed.items())
    items = [f"lab <code>{escape(rec.lab)}</code>; started {_when(rec.started)}; time spent {r['minutes']:.1f} min"]
    if rec.kind == "exercise":
        items.append(f"exercise seed {rec.seed}, {len(rec.faults)} fault(s) injected: "
                     f"{escape(', '.join(rec.faults))}")
    last = r["last"]
    if last:
        items.append("last verdict: <b>" + escape("reachable" if last.get("cause") == "reachable" else
                     f"stopped: {last.get('cause')} at {(last.get('stop') or {}).get('node')}") + "</b>")
    fixes = [e for e in rec.events if e["type"] == "fix"]
    if fixes:
        items.append(f"diagnose --fix used {len(fixes)} time(s)")
    summary = "".join(f"<li>{i}</li>" for i in items)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>wgtrace report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td{{padding:2px 8px;border-bottom:1px solid #ddd}}</style>
</head><body><h1>wgtrace {escape(rec.kind)} report: {escape(rec.name)}</h1><ul>{summary}</ul>
{r['svg']}
{"<h2>Stages passed</h2><table><tr><th>stage</th><th>passed at</th><th>minutes</th></tr>" + passed + "</table>" if passed else ""}
<h2>What happened</h2><table><tr><th>time</th><th>event</th><th>detail</th></tr>{''.join(rows)}</table>
</body></html>
"""


def write(path: str, text: str) -> None:
    """Write a report file; one clear sentence when the place cannot take it."""
    from ..errors import UsageError
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except FileNotFoundError:
        raise UsageError(f"{path}: its directory does not exist.") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot write it ({e.strerror}).") from None
