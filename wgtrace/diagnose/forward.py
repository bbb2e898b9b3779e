"""Checks at a node that should pass the packet on: it entered and never left (forwarding), or it
left by a cable and arrived nowhere (next_link)."""
from __future__ import annotations

import ipaddress

from . import fixes
from .at_source import intended_dev, link_restore, neighbor, way
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


def _forward_accepts(f, iif: str, out: str) -> bool:
    """Would the FORWARD chain let a new packet from ``iif`` out of ``out``? Judged by the rules'
    interfaces: the first rule that matches by them alone decides (rules with other matches,
    addresses, ports, states other than NEW, are passed over), else the policy."""
    for c in f.rules:
        if c.table != "filter" or c.chain != "FORWARD" or c.is_policy:
            continue
        words, want, ok = c.args, {"-i": iif, "-o": out}, True
        i = 0
        while i < len(words) and ok:
            w = words[i]
            if w in ("-i", "--in-interface", "-o", "--out-interface") and i + 1 < len(words):
                ok = words[i + 1] == want[{"--in-interface": "-i", "--out-interface": "-o"}.get(w, w)]
                i += 2
            elif w == "-m" and i + 1 < len(words) and words[i + 1] in ("conntrack", "state"):
                i += 2
            elif w in ("--ctstate", "--state") and i + 1 < len(words):
                ok = "NEW" in words[i + 1].split(",")
                i += 2
            elif w == "-j" and i + 1 < len(words):
                i += 2
            else:
                ok = None               # something else decides: not judged here
        if ok:
            return c.target == "ACCEPT"
    policy = next((c for c in f.rules if c.table == "filter" and c.chain == "FORWARD" and c.is_policy), None)
    return policy is None or policy.target == "ACCEPT"


def _stray_route(ctx: Context, node: str, prefix: str, src: str, iface: str, net: str) -> tuple[str, ...] | None:
    """A route the lab file does not declare, wider than the network the tunnel carries for
    ``src``, that takes ``src``'s way back away from ``iface``: without it the next route leads
    back into ``iface``, so it is taken out (a narrower route into ``iface`` would leave the
    rest of it wrong)."""
    if ipaddress.IPv4Network(prefix).prefixlen >= ipaddress.IPv4Network(net).prefixlen:
        return None
    n = ctx.lab.nodes.get(node)
    if any(r.dst == prefix and not r.table and ctx.declared(r.stage) for r in (n.routes if n else ())):
        return None
    a = ipaddress.IPv4Address(src)
    routes = ctx.f(node).routes
    here = next((r for r in routes if r.dst == prefix), None)
    rest = [r for r in routes if r.dst != prefix and a in ipaddress.IPv4Network("0.0.0.0/0" if r.dst == "default"
                                                                               else r.dst)]
    nxt = max(rest, key=lambda r: 0 if r.dst == "default" else int(r.dst.split("/")[1]), default=None)
    if here is None or nxt is None or nxt.dev != iface:
        return None
    return ("ip", "route", "del", prefix, *(("via", here.via) if here.via else ()))


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
        stray = _stray_route(ctx, node, prefix, h.src, h.iface, net) if prefix else None
        if stray:
            v.fixes(node, stray)
        elif prefix and ipaddress.IPv4Network(prefix).prefixlen >= ipaddress.IPv4Network(net).prefixlen:
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
    # The kernel routes the packet elsewhere than the interface that should carry it (its own
    # network there, a tunnel, the lab file's route), where a filter may have caught it: that
    # interface is down or gone, or (when the firewall would let the packet go the right way) the
    # route is wrong, whatever dropped the packet afterwards.
    want, so_far = intended_dev(ctx, node, dst)
    if want and so_far and (not r.ok or r.dev != want):
        down = link_restore(ctx, node, want, phase)
        if down:
            down.lead(node, seen[0], seen[1], **seen[2])
            if r.ok:
                down.add(node, "route", "route-get-iif", dst=dst, src=h.src, iif=h.iface, dev=r.dev)
            return down
        if r.ok and r.type not in ("unreachable", "blackhole", "prohibit") and not ctx.on_link(node, dst) \
                and _forward_accepts(f, h.iface, want):
            v = Verdict("route-missing", Stop(node, h.iface, phase),
                        params={**params, **way(want if ctx.is_wg(node, want) else None)})
            v.add(node, seen[0], seen[1], **seen[2])
            v.add(node, "route", "routed-not-by", dst=dst, src=h.src, iif=h.iface, dev=r.dev, want=want)
            v.fixes(node, *fixes.restore_route(ctx, node, dst))
            return v
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
        down.lead(node, seen[0], seen[1], **seen[2])
        return down
    far = fixes.far_end(ctx, node, out)
    if far:
        down = link_restore(ctx, far[0], far[1], phase)
        if down:
            down.lead(node, seen[0], seen[1], **seen[2])
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
            v.lead(h.node, "capture", "left", summary=h.summary, node=h.node, iface=h.iface)
            return v
    return inconsistent(ctx, "left-lost", node=h.node, iface=h.iface)
