"""``wgtrace diagnose``: trace once, read every node's state around it, decide, explain, fix.

Order matters: firewall counters are read before and after the probe, so the rules
that moved are exactly the ones this probe met.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from . import evidence
from .explain import explain
from .node import NodeHandle
from .path import TraceResult, assemble
from .status import require_lab
from .trace import lab_of, make_probe
from .verdict import Context, Verdict, decide


@dataclass
class Diagnosis:
    trace: TraceResult
    verdict: Verdict
    explanation: str
    lang: str
    seconds: float = 0.0

    @property
    def reachable(self) -> bool:
        return self.verdict.cause == "reachable"

    def to_json(self) -> dict:
        t, v = self.trace, self.verdict
        return {"src": t.src, "dst": t.dst, "dst_ip": t.probe["dst_ip"], "probe": t.probe,
                "reachable": self.reachable, "cause": v.cause, "stop": v.stop,
                "explanation": self.explanation, "evidence": v.evidence, "fix": v.fix,
                "last_seen": t.last_seen.to_json() if t.last_seen else None,
                "story": t.story, "hops": [h.to_json() for h in t.hops]}


def _route_lookups(nodes: dict[str, NodeHandle], res: TraceResult, lab) -> dict:
    routes: dict[tuple, dict] = {}
    want: set[tuple] = {(res.src, res.probe["dst_ip"], None, None)}
    for h in res.hops:
        if h.role not in ("request", "reply"):
            continue
        want.add((h.node, h.dst, None, None))
        want.add((h.node, h.src, None, None))
        if h.dir == "in":
            want.add((h.node, h.dst, h.src, h.iface))
            if h.role == "reply":     # after de-NAT the reply is for the request's first source
                want |= {(h.node, r.src, h.src, h.iface) for r in res.hops
                         if r.role == "request" and r.node == h.node and r.layer == "inner"}
    for key in want:
        node, dst, src, iif = key
        if node in nodes:
            routes[key] = evidence.route_get(nodes[node], dst, src, iif)
            if src is None:
                m = evidence.matching_route(nodes[node], dst)
                if m:
                    routes[(node, "match", dst)] = m
    return routes


def run_diagnose(src: str, dst: str, lab_name: str | None = None, tcp: int | None = None,
                 udp: int | None = None, size: int | None = None, lang: str = "en") -> Diagnosis:
    from .observe import observe
    t0 = time.monotonic()
    state = require_lab(lab_name)
    lab = lab_of(state)
    probe = make_probe(lab, src, dst, tcp, udp, size)
    handles = {n: NodeHandle(state.lab, n, state.wg_impl) for n in state.nodes}
    nodes = list(handles.values())
    facts = evidence.snapshot(nodes)
    obs = observe(nodes, probe, skip_ifaces=lab.bridge_ports())
    evidence.finish(nodes, facts)
    res = assemble(lab, obs, src, dst)
    # The probe's flow as connection tracking saw it, on the nodes that translate addresses.
    first = next((h for h in res.hops if h.role == "request" and h.layer == "inner"), None)
    if first:
        for name, f in facts.items():
            if any(c.table == "nat" and c.target in ("MASQUERADE", "SNAT") for c in f.rules) and \
                    any(h.node == name for h in res.hops if h.layer == "inner"):
                f.conntrack = evidence.conntrack_lines(handles[name], first.src, first.dst)
    ctx = Context(lab, res, facts, _route_lookups(handles, res, lab), state.keys, time.time())
    v = decide(ctx)
    return Diagnosis(res, v, explain(v.cause, v.params, lang), lang, time.monotonic() - t0)


@dataclass
class FixStep:
    diagnosis: Diagnosis
    applied: list[dict] = field(default_factory=list)    # {"node", "command", "status", "output"}


def fix_loop(src: str, dst: str, lab_name: str | None = None, max_rounds: int = 16,
             on_step: Callable[[FixStep], None] = lambda s: None, **kw) -> list[FixStep]:
    """Diagnose, apply the fix, and again, until reachable or no fix is known."""
    steps: list[FixStep] = []
    state = require_lab(lab_name)
    seen: set[str] = set()
    for _ in range(max_rounds):
        d = run_diagnose(src, dst, state.lab, **kw)
        if steps and d.verdict.cause == "wg-no-handshake" and (not d.verdict.fix or repr(d.verdict.fix) in seen):
            d = _await_handshake(src, dst, state.lab, d, **kw)
        step = FixStep(d)
        steps.append(step)
        if d.reachable or not d.verdict.fix:
            on_step(step)
            break
        key = repr(d.verdict.fix)
        if key in seen:            # the same fix again would not change anything
            on_step(step)
            break
        seen.add(key)
        for f in d.verdict.fix:
            h = NodeHandle(state.lab, f["node"], state.wg_impl)
            r = h.run(["sh", "-c", f["command"]])
            step.applied.append({**f, "status": r.returncode, "output": (r.stderr or r.stdout).strip()})
        on_step(step)
        if any(a["status"] != 0 for a in step.applied):
            break
        # A WireGuard change may need a fresh handshake before data flows; give it a moment.
        time.sleep(0.3 if any(a["command"].startswith("wg ") for a in step.applied) else 0.05)
    return steps


def _await_handshake(src: str, dst: str, lab: str, d: Diagnosis, **kw) -> Diagnosis:
    """After a fix, a tunnel may still be between handshakes: WireGuard sends one initiation per
    5 s at most, so a verdict of "no handshake" right after a repair is not yet the truth.
    Probe again (each probe asks for a handshake) for up to 6 s before believing it."""
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline and d.verdict.cause == "wg-no-handshake":
        time.sleep(1.0)
        d = run_diagnose(src, dst, lab, **kw)
    return d
