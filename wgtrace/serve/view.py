"""What the page is sent: a lab's reading, progress, last matrix and probe results as plain JSON.

Pure functions over plain data (``labs.Reading`` and dicts), unit-tested without a lab. Nothing
here reads a file or a socket. Two rules hold for everything that leaves the server:
  - no secret: any WireGuard key that is not one of the lab's public keys is replaced (``redact``),
    whatever part of wgtrace put it into a result;
  - no time that moves by itself: ages are computed by the page from absolute times, so a lab whose
    state did not change produces the same JSON, and no event is sent for it.
"""
from __future__ import annotations

import hashlib
import re

# A WireGuard key: 32 bytes in base64 (43 characters, the last of them one of 16, then "=").
KEY_RE = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=(?![A-Za-z0-9+/=])")
HIDDEN = "(key hidden)"


def redact(data, public: frozenset[str] | set[str] = frozenset()):
    """``data`` with every key-shaped string that is not in ``public`` replaced by HIDDEN."""
    if isinstance(data, str):
        return KEY_RE.sub(lambda m: m.group(0) if m.group(0) in public else HIDDEN, data)
    if isinstance(data, dict):
        return {k: redact(v, public) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact(v, public) for v in data]
    return data


def picture_id(svg: str) -> str:
    """Labs built from the same file share one picture: the page gets it once."""
    return hashlib.sha1(svg.encode()).hexdigest()[:12]


def probe_label(kind: str, port: int) -> str:
    return "icmp" if kind == "icmp" else f"{kind}/{port}"


# --- progress -------------------------------------------------------------------------------------

def belongs(rec: dict, name: str, started: float) -> bool:
    """A record is this build's: same lab name, and made for this build (lessons keep the build's
    time; an exercise record is written just after its lab came up)."""
    if rec.get("lab") != name:
        return False
    if rec.get("lab_started"):
        return abs(rec["lab_started"] - started) < 1e-3
    return rec.get("started", 0) >= started - 1


def progress(recs: list[dict], name: str, started: float, stages: int) -> dict | None:
    """The newest lesson or exercise record of this build, as the page shows it."""
    mine = [r for r in recs if r.get("kind") in ("lesson", "exercise") and belongs(r, name, started)]
    if not mine:
        return None
    rec = max(mine, key=lambda r: r.get("started", 0))
    events = rec.get("events") or []
    last = next((e for e in reversed(events) if e.get("type") in ("diagnosis", "check")), None)
    out = {"kind": rec["kind"], "name": rec.get("name", ""), "started": rec.get("started", 0),
           "finished": rec.get("finished", 0) or 0, "updated": events[-1]["t"] if events else rec.get("started", 0),
           "last": {"cause": last.get("cause"), "stop": (last.get("stop") or {}).get("node")} if last else None}
    if rec["kind"] == "lesson":
        out.update(stage=min(rec.get("stage", 1), stages), stages=stages, passed=len(rec.get("passed") or {}))
    else:
        out.update(faults=len(rec.get("faults") or []), checks=sum(e.get("type") == "check" for e in events),
                   fixes=sum(e.get("type") == "fix" for e in events),
                   passed=bool(last and last.get("type") == "check" and last.get("passed")))
    return out


# --- the check --all matrix -----------------------------------------------------------------------

def matrix(m: dict | None, started: float) -> dict | None:
    """src x dst of the last ``check --all`` of this build: each cell ok, or the cause and the node
    where the probe stopped; None when there is none for this build."""
    if not m or abs(m.get("started", -1) - started) > 1e-3:
        return None
    checks = m.get("checks") or []
    def col(c):        # as check --all names its columns: the probe unless ICMP, "v6" for IPv6 (not of an address)
        six = " v6" if c.get("family") == 6 and ":" not in c["dst"] else ""
        return (c["dst"] if c.get("probe", "icmp") == "icmp" else f"{c['dst']} {c['probe']}") + six
    srcs = list(dict.fromkeys(c["src"] for c in checks))
    dsts = list(dict.fromkeys(col(c) for c in checks))
    cells = {(c["src"], col(c)): ({"ok": True, **({"leak": c["leak"]} if c.get("leak") else {})} if c.get("reachable") else
                                   {"ok": False, "cause": c.get("cause"), "stop": c.get("stop")}) for c in checks}
    return {"at": m.get("at", 0), "stage": m.get("stage", -1), "passed": bool(m.get("passed")),
            "srcs": srcs, "dsts": dsts, "cells": [[cells.get((s, d)) for d in dsts] for s in srcs]}


# --- a diagnosis from the page ------------------------------------------------------------------------

def path_of(d: dict) -> tuple[list[str], str | None]:
    """What the picture draws of a diagnosis: the nodes the probe was seen on (green), in order,
    and the node where it stopped (red), None when it got through."""
    nodes = list(d.get("nodes") or dict.fromkeys(h["node"] for h in d.get("hops") or []))
    stop = None if d.get("reachable") else (d.get("stop") or {}).get("node")
    return nodes, stop


def verdict(d: dict, picture: str, at: float) -> dict:
    """The part of ``Diagnosis.to_json`` the page shows, with the picture the path is drawn on."""
    probe = d.get("probe") or {}
    nodes, stop = path_of(d)
    hops = [{"node": h["node"], "iface": h["iface"], "dir": h["dir"], "role": h["role"]}
            for h in d.get("hops") or [] if h.get("layer") == "inner" and h.get("role") in ("request", "reply")]
    return {"src": d.get("src"), "dst": d.get("dst"), "dst_ip": d.get("dst_ip"),
            "probe": probe_label(probe.get("kind", "icmp"), probe.get("port", 0)),
            "reachable": bool(d.get("reachable")), "cause": d.get("cause"), "stop": d.get("stop"),
            "explanation": d.get("explanation", ""), "story": d.get("story", ""),
            "evidence": [{"node": e["node"], "detail": e["detail"]} for e in d.get("evidence") or []],
            "fix": [{"node": f["node"], "command": f["command"]} for f in d.get("fix") or []],
            "hops": hops, "nodes": nodes, "stop_node": stop, "seconds": d.get("seconds", 0),
            "at": at, "picture": picture}


# --- a whole lab --------------------------------------------------------------------------------------

def lab(r, pic_id: str | None, prog: dict | None, mat: dict | None, probe: dict | None) -> dict:
    """One lab as the page gets it. ``r`` is a ``labs.Reading``; ``probe`` what the server's own
    probes left for this build ({"running", "diagnosis", "error"})."""
    shape = r.model
    stages = len(shape.stages) - 1 if shape else 0
    stage = {"index": r.stage, "of": stages, "name": r.stage_name,
             "title": shape.stages[r.stage][1] if shape and 0 <= r.stage < len(shape.stages) else ""}
    return {"name": r.name, "status": r.status, "file": r.file, "started": r.started, "stage": stage,
            "missing": list(r.missing), "error": r.model_error,
            "nodes": list(shape.nodes) if shape else [], "probe_pair": list(shape.probe) if shape else ["", ""],
            "checks": shape.checks if shape else 0,
            "picture": pic_id, "progress": prog, "matrix": mat,
            "probe": probe or {"running": None, "diagnosis": None, "error": None}}
