"""``wgtrace diagnose``: read every node's state, probe once, read the counters again, decide.

Order matters: firewall counters are read before and after the probe, so the rules that moved
are exactly the ones this probe met. The route lookups are made afterwards, for the packets
the capture actually saw, as each node saw them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..addr import family as addr_family, host_of
from ..errors import LabStateError
from ..network import Network
from ..texts import explain
from ..trace.path import TraceResult, assemble
from ..trace.run import Families, check_family, families, prepare, probe_once, widening
from . import facts as factsmod
from .context import Context
from .rules import decide
from .verdict import Verdict


@dataclass
class Diagnosis:
    trace: TraceResult
    verdict: Verdict
    lang: str
    seconds: float = 0.0
    context: Context | None = None

    @property
    def reachable(self) -> bool:
        return self.verdict.cause == "reachable"

    @property
    def explanation(self) -> str:
        return explain(self.verdict.cause, self.verdict.params, self.lang)

    def to_json(self, lang: str | None = None) -> dict:
        t, v, lang = self.trace, self.verdict, lang or self.lang
        return {"src": t.src, "dst": t.dst, "dst_ip": t.probe["dst_ip"], "probe": t.probe,
                "family": t.family, "reachable": self.reachable, **v.to_json(lang),
                "explanation": explain(v.cause, v.params, lang),
                "last_seen": t.last_seen.to_json() if t.last_seen else None,
                "story": t.story_text(lang), "hops": [h.to_json() for h in t.hops]}


def route_lookups(net: Network, res: TraceResult, facts: dict) -> tuple[dict, dict]:
    """Each node's own route lookups for the packets seen there (and the source's for the probe):
    plain ones, and for packets that came in, as the kernel looks them up on input."""
    want: set[tuple] = {(res.src, res.probe["dst_ip"], None, None)}
    owner = res.dst_node
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
    if owner:
        want.add((owner, res.probe.get("src_ip") or "", None, None))
    for h in res.hops:                # where WireGuard would send what went into a tunnel (a loop?)
        if h.layer == "inner" and h.dir == "out" and facts.get(h.node):
            want |= {(h.node, host_of(p.endpoint), None, None) for w in facts[h.node].wg if w.name == h.iface
                     for p in w.peers if p.endpoint}
    routes, prefixes, soon = {}, {}, {}
    for key in want:                 # asked side by side, then answered
        node, dst, src, iif = key
        if node in net.nodes and dst and facts.get(node) and facts[node].readable:
            soon[key] = net.nodes[node].route_get_soon(dst, src, iif)
    for (node, dst, src, iif), done in soon.items():
        routes[(node, dst, src, iif)] = done()
        if src is None:
            m = factsmod.matching_route(facts[node], dst)
            if m:
                prefixes[(node, dst)] = m
    return routes, prefixes


def diagnose(net: Network, src: str, dst: str, tcp: int | None = None, udp: int | None = None,
             size: int | None = None, lang: str = "en", family: int | None = None) -> Diagnosis:
    """One diagnosis, in ``family`` (else IPv4 where the destination has both)."""
    t0 = time.monotonic()
    probe = prepare(net, src, dst, tcp, udp, size, family)
    seen: dict = {}

    def look(probe, watched: set[str]) -> TraceResult:
        nodes = [h for n, h in net.nodes.items() if n in watched]
        with net.exclusive():            # counters move for this probe only, not for a concurrent one
            facts = factsmod.snapshot(nodes)
            gone = [n for n, f in facts.items() if not f.readable]
            if gone and net.whole:          # a lab: a node that is gone means a broken lab
                raise LabStateError(f"lab {net.name!r} is broken: node {gone[0]} no longer exists "
                                    f"(its namespace is gone); run 'wgtrace lab down {net.name}' and bring it up again.")
            obs = probe_once(net, probe, exclusive=False, watched=watched)
            factsmod.finish(nodes, facts, addr_family(probe.dst) or 4)
        seen.update(facts=facts, gone=gone, probe=probe)
        return assemble(net.model, obs, src, dst, {(n, w.name) for n, f in facts.items() for w in f.wg})
    res = widening(net, probe, look)
    facts, gone = seen["facts"], seen["gone"]
    # The probe's flow as connection tracking saw it, on the nodes that translate addresses.
    first = next((h for h in res.hops if h.role == "request" and h.layer == "inner"), None)
    if first:
        on_path = {h.node for h in res.hops if h.layer == "inner"}
        for name, f in facts.items():
            if name in on_path and f.fw.translating():
                # the last probe's own flow (its ICMP id or source port), not an older one's
                f.conntrack = net.nodes[name].conntrack(first.src, first.dst, seen["probe"].ident)[-3:]
    routes, prefixes = route_lookups(net, res, facts)
    ctx = Context(net.model, res, facts, routes, prefixes, dict(net.keys), time.time(), net.stage)
    v = decide(ctx)
    for n in sorted(set(gone) | set(net.unseen)):    # what could not be seen is part of the evidence
        v.add(n, "unseen", "why", why=net.unseen.get(n) or f"{n} could not be read")
    return Diagnosis(res, v, lang, time.monotonic() - t0, ctx)


def diagnose_families(net: Network, src: str, dst: str, family: int | None = None, **kw) -> Families:
    """``diagnose`` on the command line: one verdict per family the probe is sent in."""
    return Families([diagnose(net, src, dst, family=f, **kw)
                     for f in families(net.model, src, dst, check_family(family))])
