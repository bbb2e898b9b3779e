"""Checks at the destination: the request arrived and no answer left (arrived), or the answer
left by a way that does not lead back through the node that brought the request (no_way_back)."""
from __future__ import annotations

from .at_source import neighbor, way
from .context import Context, in_nets
from .forward import _strict_rp, accept_rule
from .verdict import Stop, Verdict


def arrived(ctx: Context, h, phase: str) -> Verdict:
    from . import fixes
    from .rules import inconsistent
    node, f = h.node, ctx.f(h.node)
    params = {"node": node, "iface": h.iface, "src": h.src, "dst": h.dst}
    seen = {"summary": h.summary, "node": node, "iface": h.iface}
    drops = [(c, n) for c, n in f.hits if c.table == "filter" and c.chain == "INPUT" and c.drops]
    if drops:
        c, n = drops[0]
        v = Verdict("input-filtered", Stop(node, h.iface, phase), params={**params, "rule": c.rule})
        v.add(node, "capture", "arrived-no-answer", **seen)
        v.add(node, "iptables", "rule-matched", chain="INPUT", rule=c.rule, n=n)
        return v.fixes(node, accept_rule(ctx, node, "INPUT", c, h.iface, None, phase))
    out_drops = [(c, n) for c, n in f.hits if c.table == "filter" and c.chain == "OUTPUT" and c.drops]
    if out_drops:                      # it answered, and its own firewall kept the answer in
        c, n = out_drops[0]
        v = Verdict("output-filtered", Stop(node, h.iface, "reply"), params={**params, "rule": c.rule})
        v.add(node, "capture", "arrived-no-answer", **seen)
        v.add(node, "iptables", "rule-matched", chain="OUTPUT", rule=c.rule, n=n)
        return v.fixes(node, accept_rule(ctx, node, "OUTPUT", c, None, None, "reply"))
    if ctx.res.probe.get("kind") == "icmp" and f.sysctl.get("net.ipv4.icmp_echo_ignore_all") == "1":
        v = Verdict("input-filtered", Stop(node, h.iface, phase),
                    params={**params, "rule": "net.ipv4.icmp_echo_ignore_all = 1"})
        v.add(node, "capture", "arrived-no-answer", **seen)
        v.add(node, "sysctl", "echo-ignored")
        return v.fixes(node, ("sysctl", "-w", "net.ipv4.icmp_echo_ignore_all=0"))
    r = ctx.route(node, h.dst, h.src, h.iface)
    back = ctx.route(node, h.src)
    strict, rp_all, rp_if = _strict_rp(f, h.iface)
    if strict and not r.ok and back.ok and back.dev != h.iface:
        v = Verdict("rp-filter", Stop(node, h.iface, phase),
                    params={**params, "back_dev": back.dev, "back_via": back.via or "-"})
        v.add(node, "capture", "arrived-no-answer", **seen)
        v.add(node, "sysctl", "rp-sysctl", all=rp_all, iface=h.iface, value=rp_if)
        v.add(node, "route", "route-back", src=h.src, via=back.via or "-", dev=back.dev, iface=h.iface)
        return v.fixes(node, *fixes.restore_route(ctx, node, h.src))
    if not back.ok:
        v = Verdict("route-missing", Stop(node, h.iface, "reply"), params={**params, "dst": h.src,
                                                                         **way(ctx.wg_iface(node, h.src))})
        v.add(node, "capture", "arrived-no-answer", **seen)
        v.add(node, "route", "route-get-error", dst=h.src, error=back.error)
        v.fixes(node, *fixes.restore_route(ctx, node, h.src))
        return v
    if not ctx.is_wg(node, back.dev):
        v = neighbor(ctx, node, back.dev, back.via or h.src, bool(back.via), h.src, "reply", seen=h)
        if v:
            return v
    return inconsistent(ctx, "no-answer", node=node, dst=h.dst)


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
    while i > 0 and _no_route(ctx.route(sent[i].node, sent[i].src)):
        i -= 1
    fwd = sent[i]
    if i < len(sent) - 1:
        came = next((h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "in"
                     and h.node == fwd.node and h.t_ms <= fwd.t_ms), None)
        mine = ctx.route(fwd.node, fwd.src)
        if came is None or _no_route(mine) or mine.dev != came.iface:
            return None
    replies = [h for h in res.hops if h.role == "reply" and h.layer == "inner"]
    if any(h.node == fwd.node or ctx.is_wg(h.node, h.iface) for h in replies):
        return None                      # the answer found its way to the tunnel: something else stopped it
    fwd_addr = [a.split("/")[0] for a in (ctx.f(fwd.node).link(fwd.iface).addresses
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
    masq = [c for c in ctx.f(fwd.node).rules if c.table == "nat" and c.target in ("MASQUERADE", "SNAT")]
    if masq:
        v.add(fwd.node, "nat", "nat-unmatched", rules="; ".join(c.rule for c in masq))
    else:
        v.add(fwd.node, "nat", "no-masquerade")
    for ct in ctx.f(fwd.node).conntrack:
        v.add(fwd.node, "conntrack", "conntrack", o_src=ct[0], o_dst=ct[1], r_src=ct[2], r_dst=ct[3],
              nat=("@", "word.snat" if ct[3] != ct[0] else "word.no-nat"))
    return v.fixes(fwd.node, ("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", vpn, "-o", fwd.iface,
                              "-j", "MASQUERADE"))


def _no_route(r) -> bool:
    return not r.ok or r.type in ("unreachable", "blackhole", "prohibit")
