"""What ``decide()`` was given, as JSON: a diagnosis recorded on a real lab, replayed anywhere.

Tests record one of these for every fault they inject (WGTRACE_RECORD=1) and replay them as
plain unit tests: the same facts must give the same verdict (its meaning: cause, stop, evidence
keys and parameters, fixes; never its words, so a text edit breaks no fixture), as any user,
without root. The lab model is referred to by its file and parameters, not copied; the
fixture keeps a digest of the lab file and its fault catalogue, so a replay can say that the
lab changed since it was recorded.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, fields
from pathlib import Path

from ..nodes.base import RouteLookup
from ..trace.path import Hop, Place, Story, TraceResult
from .context import Context
from .facts import NodeFacts

VERSION = 2          # 1: facts kept iptables text (still read); 2: the firewall's neutral rules


def _hop(d: dict) -> Hop:
    return Hop(**{f.name: d[f.name] for f in fields(Hop) if f.name in d})


def _story_params(p: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in p.items()}


def dump_trace(res: TraceResult) -> dict:
    return {"src": res.src, "dst": res.dst, "probe": res.probe, "reachable": res.reachable,
            "hops": [asdict(h) for h in res.hops], "last_seen": asdict(res.last_seen) if res.last_seen else None,
            "reached_dst": res.reached_dst, "stop_phase": res.stop_phase, "send_error": res.send_error,
            "errors": [asdict(h) for h in res.errors], "redirects": [asdict(h) for h in res.redirects],
            "handshakes": [asdict(h) for h in res.handshakes], "route": res.route, "ended": res.ended,
            "story": {"kind": res.story.kind, "params": res.story.params}, "dst_node": res.dst_node,
            "refused": res.refused, "arp": [list(a) for a in res.arp], "other": res.other}


def load_trace(d: dict) -> TraceResult:
    return TraceResult(d["src"], d["dst"], d["probe"], d["reachable"], [_hop(h) for h in d["hops"]],
                       Place(**d["last_seen"]) if d["last_seen"] else None, d["reached_dst"], d["stop_phase"],
                       d["send_error"], [_hop(h) for h in d["errors"]], [_hop(h) for h in d["redirects"]],
                       [_hop(h) for h in d["handshakes"]], d["route"], d["ended"],
                       Story(d["story"]["kind"], _story_params(d["story"]["params"])), d["dst_node"],
                       d["refused"], [tuple(a) for a in d["arp"]], other=d.get("other", {}))


def dump_context(ctx: Context) -> dict:
    lab = {"file": ctx.lab.path, "name": ctx.lab.name, "params": ctx.lab.params}
    if ctx.lab.source is not None:           # a model not read from its file (a view, hosts)
        lab["data"] = ctx.lab.source
    return {"version": VERSION, "lab": lab,
            "trace": dump_trace(ctx.res), "facts": {n: f.to_json() for n, f in ctx.facts.items()},
            "routes": [[list(k), asdict(v)] for k, v in ctx.routes.items()],
            "prefixes": [[list(k), v] for k, v in ctx.prefixes.items()],
            "keys": ctx.keys, "now": ctx.now, "stage": ctx.stage}


def load_context(d: dict, lab_file: str | None = None, load_lab=None) -> Context:
    """``lab_file``: where the lab file is on this machine (the recorded path may be another's);
    ``load_lab``: how to read it (replaying many fixtures of one lab reads it once)."""
    if load_lab is None:
        from ..model.labfile import load_lab
    if "data" in d["lab"]:
        from ..model.parse import parse_lab
        lab = parse_lab(d["lab"]["data"], lab_file or d["lab"]["file"])
    else:
        lab = load_lab(lab_file or d["lab"]["file"], rename=d["lab"]["name"],
                       params={k: str(v) for k, v in d["lab"]["params"].items()})
    return Context(lab, load_trace(d["trace"]), {n: NodeFacts.from_json(f) for n, f in d["facts"].items()},
                   {tuple(k): RouteLookup(**v) for k, v in d["routes"]},
                   {tuple(k): v for k, v in d["prefixes"]}, d["keys"], d["now"], d["stage"])


def lab_digest(lab_file: str) -> str:
    """sha256 of the lab file and its fault catalogue, as they are now."""
    from ..model.faults import faults_file
    h = hashlib.sha256()
    for p in (Path(lab_file), faults_file(lab_file)):
        h.update(p.read_bytes() if p.is_file() else b"")
    return h.hexdigest()


def record(ctx: Context, verdict, fault, lab: str, lab_file: str) -> dict:
    """One fixture: what a fault's diagnosis was given and what it concluded."""
    return {"version": VERSION, "fault": fault.name, "lab": lab, "lab_sha256": lab_digest(lab_file),
            "expect": {"cause": fault.cause, "node": fault.node, "phase": fault.direction},
            "verdict": verdict.meaning(), "context": dump_context(ctx)}
