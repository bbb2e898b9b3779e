"""From a trace and the nodes' state to one verdict: a table of small named checks.

The checks follow the packet. The whole-path checks come first (a tunnel routed into itself; the
destination refused; the source could not send; an ICMP error named the MTU; a node sent a tunnel-bound
packet out of the wrong interface; the destination's way back bypasses the node that brought the
request; a node translated the source to an address nobody has).
Then the last place the probe was seen decides which place's checks apply:

  a WireGuard datagram arrived at its own endpoint   -> endpoint.receive
  a datagram or packet entered a node that forwards  -> forward.forwarding
  a packet went into a WireGuard interface           -> tunnel.send
  the request arrived at the destination             -> at_destination.arrived
  a packet left by a cable and arrived nowhere       -> gap.left (the far end down; out of view:
                                                        roaming, a missing NAT, the gap itself)

Each check returns a Verdict or None. Nothing here touches the kernel: the same facts give
the same verdict, which is what the replayed fixtures in tests/unit check.
"""
from __future__ import annotations

from . import at_destination, at_source, endpoint, forward, gap, roaming, translated, tunnel
from ..trace.leak import leak_of
from .common import inconsistent
from .context import Context
from .verdict import Verdict

# Checks over the whole path, in order; the first that finds something decides.
WHOLE_PATH = (roaming.tunnel_loop, *at_source.CHECKS, tunnel.wrong_peer, at_destination.no_way_back,
              translated.translated_to_nowhere)


def decide(ctx: Context) -> Verdict:
    res = ctx.res
    if res.reachable:
        v = Verdict("reachable", None, params={"src": res.src, "dst": res.dst})
        v.add(res.src, "capture", "answer-back", path=res.inner_path("reply") or "-")
        f = ctx.f(res.src)
        left = leak_of(res, f.wg, f.links)
        if left:                 # reachable, around the full tunnel: a finding, not a stop
            v.add(res.src, "capture", "leak", iface=left[0], wg=left[1], covers=left[2], family=ctx.family)
        return v
    for check in WHOLE_PATH:
        v = check(ctx)
        if v:
            return _other_traffic(ctx, v)
    return _other_traffic(ctx, last_hop(ctx) or inconsistent(ctx, "no-rule"))


def _other_traffic(ctx: Context, v: Verdict) -> Verdict:
    """A counter that moved by more than one packet on a node where other traffic passed during
    the probe may count that traffic too: say so next to it."""
    for e in list(v.evidence):
        n = dict(e.params).get("n")
        others = ctx.res.other.get(e.node, 0)
        if e.key == "rule-matched" and isinstance(n, int) and n > 1 and others:
            v.add(e.node, e.kind, "other-traffic", others=others)
    return v


def last_hop(ctx: Context) -> Verdict | None:
    """The place where the probe was last seen decides which place's checks apply."""
    moving = [h for h in ctx.res.hops if h.role in ("request", "reply")]
    if not moving:
        return None
    h = moving[-1]
    phase = h.role
    if h.layer == "underlay" and h.dir == "in":
        if ctx.owner(h.dst) == h.node:
            return endpoint.receive(ctx, h, phase)
        return forward.forwarding(ctx, h, phase)       # a router on the way dropped the datagram
    if h.layer == "inner" and h.dir == "out" and ctx.is_wg(h.node, h.iface):
        return tunnel.send(ctx, h, phase)
    if h.layer == "inner" and h.dir == "in":
        if phase == "request" and ctx.owner(ctx.res.probe["dst_ip"]) == h.node:
            return at_destination.arrived(ctx, h, phase)
        return forward.forwarding(ctx, h, phase)
    if h.dir == "out":
        return gap.left(ctx, h, phase)
    return None
