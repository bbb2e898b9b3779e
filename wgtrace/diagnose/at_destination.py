"""Checks at the destination: the request arrived and no answer left (``arrived``, the ordered
``ARRIVED`` checks), or the answer left by a way that does not lead back through the node that
brought the request (``no_way_back``, a whole-path check)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .. import addr
from ..addr import in_nets
from . import firewall, fixes
from .common import (At, drops as lost, filtered, inconsistent, let_through, neighbor, no_route, packet,
                     rp_dropped, rp_failed, rp_rule_verdict, rp_verdict, way)
from .context import Context
from .verdict import Stop, Verdict


@dataclass
class Request(At):
    """The request at the destination, seen arriving, with no answer seen leaving."""

    @cached_property
    def params(self) -> dict:
        return {"node": self.node, "iface": self.h.iface, "src": self.h.src, "dst": self.h.dst}

    def seen(self) -> tuple:
        return ("capture", "arrived-no-answer", {"summary": self.h.summary, "node": self.node, "iface": self.h.iface})

    @cached_property
    def back(self):
        return self.ctx.route(self.node, self.h.src)


def input_drops(q: Request) -> Verdict | None:
    drops = lost(q.ctx, q.node, "input", packet(q.ctx, q.node, q.h, q.phase, iif=q.h.iface))
    if not drops:
        return None
    c, n = drops[0]
    v = filtered("input-filtered", q.node, q.h.iface, q.phase, c, n, q.params, seen=q.seen())
    return v.fixes(q.node, let_through(q.ctx, q.node, "input", c, q.h.iface, None, q.phase))


def output_drops(q: Request) -> Verdict | None:
    """It answered, and its own firewall kept the answer in."""
    drops = lost(q.ctx, q.node, "output", packet(q.ctx, q.node, q.h, "reply", oif=q.back.dev if q.back.ok else None,
                                                  back=True))
    if not drops:
        return None
    c, n = drops[0]
    v = filtered("output-filtered", q.node, q.h.iface, "reply", c, n, q.params, seen=q.seen())
    return v.fixes(q.node, let_through(q.ctx, q.node, "output", c, None, None, "reply"))


def echo_ignored(q: Request) -> Verdict | None:
    key = "net.ipv6.icmp.echo_ignore_all" if q.ctx.family == 6 else "net.ipv4.icmp_echo_ignore_all"
    if q.ctx.res.probe.get("kind") != "icmp" or q.f.sysctl.get(key) != "1":
        return None
    v = Verdict("input-filtered", Stop(q.node, q.h.iface, q.phase), params={**q.params, "rule": f"{key} = 1"})
    v.add(q.node, *q.seen()[:2], **q.seen()[2])
    v.add(q.node, "sysctl", "echo-ignored" if q.ctx.family == 4 else "echo-ignored6")
    return v.fixes(q.node, ("sysctl", "-w", f"{key}=0"))


def reverse_path(q: Request) -> Verdict | None:
    failed = rp_failed(q.ctx, q.node, q.h.iface, q.h.dst, q.h.src)
    if failed is not None:
        v = rp_verdict(q.ctx, q.node, q.h.iface, q.phase, q.h.dst, q.h.src, q.params, q.seen(), failed,
                       iif_error=False)
    else:
        dropped = rp_dropped(q.ctx, q.node, q.h.iface, q.h.src)
        if dropped is None:
            return None
        v = rp_rule_verdict(q.ctx, q.node, q.h.iface, q.phase, q.h.src, q.params, q.seen(), dropped)
    return v.fixes(q.node, *fixes.restore_route(q.ctx, q.node, q.h.src))


def no_way_home(q: Request) -> Verdict | None:
    if q.back.ok:
        return None
    v = Verdict("route-missing", Stop(q.node, q.h.iface, "reply"),
                params={**q.params, "dst": q.h.src, **way(q.ctx.wg_iface(q.node, q.h.src))})
    v.add(q.node, *q.seen()[:2], **q.seen()[2])
    v.add(q.node, "route", "route-get-error", dst=q.h.src, error=q.back.error)
    return v.fixes(q.node, *fixes.restore_route(q.ctx, q.node, q.h.src))


def next_hop_silent(q: Request) -> Verdict | None:
    if q.ctx.is_wg(q.node, q.back.dev):
        return None
    return neighbor(q.ctx, q.node, q.back.dev, q.back.via or q.h.src, bool(q.back.via), q.h.src, "reply", seen=q.h)


ARRIVED = (input_drops, output_drops, echo_ignored, reverse_path, no_way_home, next_hop_silent)


def arrived(ctx: Context, h, phase: str) -> Verdict:
    q = Request(ctx, h, phase)
    for check in ARRIVED:
        v = check(q)
        if v:
            return v
    return inconsistent(ctx, "no-answer", node=q.node, dst=h.dst)


def no_way_back(ctx: Context) -> Verdict | None:
    """The request reached the destination with a source address it can only answer through its
    default gateway, not through the node that brought the request: NAT (or a route) is missing."""
    res = ctx.res
    if not res.reached_dst or res.stop_phase != "reply":
        return None
    arrive = next(h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "in"
                  and h.node == res.dst_node)
    sent = [h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "out"
            and h.t_ms <= arrive.t_ms and h.node != arrive.node]
    if not sent or not ctx.behind_tunnel(arrive.src) or ctx.on_link(arrive.node, arrive.src):
        return None
    # The node that should translate: the one that put the request on the destination's LAN, or,
    # when routers on the way have no route back to the source at all (the internet knows no
    # private network), the last node before them, if it knows the way back itself.
    i = len(sent) - 1
    while i > 0 and no_route(ctx.route(sent[i].node, sent[i].src)):
        i -= 1
    fwd = sent[i]
    if i < len(sent) - 1:
        came = next((h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "in"
                     and h.node == fwd.node and h.t_ms <= fwd.t_ms), None)
        mine = ctx.route(fwd.node, fwd.src)
        if came is None or no_route(mine) or mine.dev != came.iface:
            return None
    replies = [h for h in res.hops if h.role == "reply" and h.layer == "inner"]
    if any(h.node == fwd.node or ctx.is_wg(h.node, h.iface) for h in replies):
        return None                      # the answer found its way to the tunnel: something else stopped it
    fwd_addr = [addr.bare(a) for a in (ctx.f(fwd.node).link(fwd.iface).addresses
                                        if ctx.f(fwd.node).link(fwd.iface) else [])]
    back = ctx.route(arrive.node, arrive.src)
    if i == len(sent) - 1 and back.via in fwd_addr:
        return None
    vpn = next((n for n in ctx.vpn_nets() if in_nets(arrive.src, [n])), None) or ctx.covering_net(arrive.src)
    v = Verdict("nat-missing", Stop(fwd.node, fwd.iface, "reply"),
                params={"node": fwd.node, "iface": fwd.iface, "dst_node": arrive.node, "src": arrive.src,
                        "gw": back.via or "-", "vpn": vpn})
    v.add(arrive.node, "capture", "arrived", summary=arrive.summary, node=arrive.node, iface=arrive.iface)
    v.add(arrive.node, "route", "route-get", dst=arrive.src, via=back.via or "-", dev=back.dev)
    if i < len(sent) - 1:                # the router after fwd that has no way back
        lost = sent[i + 1]
        v.add(lost.node, "route", "route-get-error", dst=lost.src, error=ctx.route(lost.node, lost.src).error or "-")
    fw = ctx.f(fwd.node).fw
    masq = fw.translating(ctx.family)
    if masq:
        v.add(fwd.node, "nat", "nat-unmatched", rules="; ".join(c.text for c in masq))
    else:
        v.add(fwd.node, "nat", "no-masquerade")
    for ct in ctx.f(fwd.node).conntrack:
        v.add(fwd.node, "conntrack", "conntrack", o_src=ct[0], o_dst=ct[1], r_src=ct[2], r_dst=ct[3],
              nat=("@", "word.snat" if ct[3] != ct[0] else "word.no-nat"))
    return v.fixes(fwd.node, firewall.masquerade(fw, ctx.family, vpn, fwd.iface))
