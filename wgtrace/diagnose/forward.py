"""Checks at a node that should pass the packet on: it entered and never left (forwarding), or it
left by a cable and arrived nowhere (next_link)."""
from __future__ import annotations

import ipaddress

from . import fixes
from .at_source import link_restore, neighbor, way
from .context import Context
from .verdict import Stop, Verdict


def _strict_rp(f, iface: str) -> tuple[bool, str, str]:
    a = f.sysctl.get("net.ipv4.conf.all.rp_filter", "0") or "0"
    i = f.sysctl.get(f"net.ipv4.conf.{iface}.rp_filter", "0") or "0"
    return max(int(a), int(i)) == 1, a, i


def accept_rule(ctx: Context, node: str, chain: str, c, iface: str | None, out: str | None,
                phase: str) -> tuple[str, ...]:
    """What lets this packet through a chain that dropped it: take out a rule someone added, or
    (for a policy, or a catch-all DROP at the end) an ACCEPT for exactly this direction. On a
    stateful firewall a reply needs the ESTABLISHED rule, not a hole of its own."""
    catch_all = not c.is_policy and len(c.args) == 2
    if not c.is_policy and not catch_all:
        return c.undo()
    stateful = any(r.chain == chain and r.table == "filter" and ("--ctstate" in r.rule or "--state" in r.rule)
                   for r in ctx.f(node).rules)
    verb = "-A" if c.is_policy else "-I"
    if phase == "reply" and stateful:
        return ("iptables", "-t", "filter", verb, chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
                "-j", "ACCEPT")
    match = ("-i", iface) if iface else ()
    if chain == "FORWARD" and out and not (iface and out == iface) and not ctx.is_wg(node, iface):
        match += ("-o", out)
    return ("iptables", "-t", "filter", verb, chain, *match, "-j", "ACCEPT")


def forwarding(ctx: Context, h, phase: str) -> Verdict:
    """The packet entered a node that should forward it, and never left."""
    from .rules import inconsistent
    node, f = h.node, ctx.f(h.node)
    dst = ctx.untranslated_dst(h)
    params = {"node": node, "iface": h.iface, "src": h.src, "dst": dst}
    r = ctx.route(node, dst, h.src, h.iface)
    back = ctx.route(node, h.src)
    seen = ("capture", "entered-never-left", {"summary": h.summary, "node": node, "iface": h.iface})
    strict, rp_all, rp_if = _strict_rp(f, h.iface)
    # The kernel's input route lookup fails (EXDEV/EINVAL) when the reverse-path check does.
    if strict and not r.ok and back.ok and back.dev != h.iface:
        v = Verdict("rp-filter", Stop(node, h.iface, phase),
                    params={**params, "back_dev": back.dev, "back_via": back.via or "-"})
        v.add(node, seen[0], seen[1], **seen[2])
        v.add(node, "sysctl", "rp-sysctl", all=rp_all, iface=h.iface, value=rp_if)
        v.add(node, "route", "route-get-iif-error", dst=dst, src=h.src, iif=h.iface, error=r.error)
        v.add(node, "route", "route-back", src=h.src, via=back.via or "-", dev=back.dev, iface=h.iface)
        prefix = ctx.prefixes.get((node, h.src))
        net = ctx.covering_net(h.src)
        if prefix and ipaddress.IPv4Network(prefix).prefixlen >= ipaddress.IPv4Network(net).prefixlen:
            v.fixes(node, ("ip", "route", "replace", prefix, "dev", h.iface))
        elif prefix or back.ok:
            v.fixes(node, ("ip", "route", "add", net, "dev", h.iface))
        else:
            v.fixes(node, ("sysctl", "-w", "net.ipv4.conf.all.rp_filter=2"),
                    ("sysctl", "-w", f"net.ipv4.conf.{h.iface}.rp_filter=2"))
        return v
    if f.sysctl.get("net.ipv4.ip_forward") == "0":
        v = Verdict("forwarding-disabled", Stop(node, h.iface, phase), params=params)
        v.add(node, seen[0], seen[1], **seen[2])
        v.add(node, "sysctl", "forward-off")
        return v.fixes(node, ("sysctl", "-w", "net.ipv4.ip_forward=1"))
    drops = [(c, n) for c, n in f.hits if c.table == "filter" and c.chain == "FORWARD" and c.drops]
    if drops:
        c, n = drops[0]
        out = r.dev if r.ok else None
        v = Verdict("forward-filtered", Stop(node, h.iface, phase), params={**params, "out": out or "?",
                                                                          "rule": c.rule})
        v.add(node, seen[0], seen[1], **seen[2])
        v.add(node, "iptables", "rule-matched", chain="FORWARD", rule=c.rule, n=n)
        v.add(node, "route", "route-get-iif", dst=dst, src=h.src, iif=h.iface, dev=out or "-")
        if phase == "reply":
            for ct in f.conntrack:
                v.add(node, "conntrack", "conntrack", o_src=ct[0], o_dst=ct[1], r_src=ct[2], r_dst=ct[3],
                      nat=("@", "word.snat" if ct[3] != ct[0] else "word.no-nat"))
        return v.fixes(node, accept_rule(ctx, node, "FORWARD", c, h.iface, out, phase))
    if not r.ok or r.type in ("unreachable", "blackhole", "prohibit"):
        v = Verdict("route-missing", Stop(node, h.iface, phase),
                    params={**params, **way(ctx.wg_iface(node, dst))})
        v.add(node, seen[0], seen[1], **seen[2])
        v.add(node, "route", "route-get-iif-error", dst=dst, src=h.src, iif=h.iface, error=r.error or r.type)
        v.fixes(node, *fixes.restore_route(ctx, node, dst))
        return v
    out = r.dev
    down = link_restore(ctx, node, out, phase)
    if down:
        down.evidence.insert(0, _ev(node, seen))
        return down
    far = fixes.far_end(ctx, node, out)
    if far:
        down = link_restore(ctx, far[0], far[1], phase)
        if down:
            down.evidence.insert(0, _ev(node, seen))
            return down
    if not ctx.is_wg(node, out):
        v = neighbor(ctx, node, out, r.via or dst, bool(r.via), dst, phase, seen=h)
        if v:
            return v
    link = f.link(out)
    if link and ctx.res.probe.get("size") and h.length > link.mtu:
        v = Verdict("mtu", Stop(node, out, phase), params={**params, "iface": out, "mtu": link.mtu, "size": h.length})
        v.add(node, "link", "mtu-smaller", iface=out, mtu=link.mtu, size=h.length)
        return v.fixes(node, *fixes.mtu_fix(ctx, node, out))
    return inconsistent(ctx, "forwards", node=node, dst=dst, dev=out)


def _ev(node: str, seen: tuple):
    from .verdict import Evidence
    return Evidence(node, seen[0], seen[1], tuple(seen[2].items()))


def next_link(ctx: Context, h, phase: str) -> Verdict | None:
    """It left a node by a cable and never arrived: is the other end down?"""
    from .rules import inconsistent
    ends = []
    far = fixes.far_end(ctx, h.node, h.iface)
    if far:
        ends.append(far)
    nexthop = ctx.route(h.node, h.dst).via or h.dst
    owner = ctx.owner(nexthop)
    if owner and owner != h.node:
        ends += [(owner, l.name) for l in ctx.f(owner).links.values()
                 if any(a.split("/")[0] == nexthop for a in l.addresses)]
    for node, iface in ends:
        v = link_restore(ctx, node, iface, phase)
        if v:
            v.evidence.insert(0, _ev(h.node, ("capture", "left", {"summary": h.summary, "node": h.node,
                                                                   "iface": h.iface})))
            return v
    return inconsistent(ctx, "left-lost", node=h.node, iface=h.iface)
