"""Checks at a node that should pass the packet on: it entered and never left (``forwarding``,
the ordered ``FORWARDING`` checks), or it left by a cable toward an interface that is down
(``far_end_down``, the first question of gap.left)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .. import addr
from . import firewall, fixes, nat, roaming
from .common import (At, drops as lost, filtered, inconsistent, intended_dev, let_through, link_restore,
                     mtu_words, neighbor, no_route, packet, rp_dropped, rp_failed, rp_rule_verdict,
                     rp_verdict, way)
from .context import Context
from .firewall import Packet
from .verdict import Stop, Verdict


@dataclass
class Transit(At):
    """A packet that entered ``h.node`` by ``h.iface`` to be forwarded, and never left."""

    @cached_property
    def dst(self) -> str:
        return self.ctx.untranslated_dst(self.h)

    @cached_property
    def params(self) -> dict:
        return {"node": self.node, "iface": self.h.iface, "src": self.h.src, "dst": self.dst}

    @cached_property
    def r(self):
        """The kernel's input route lookup for the packet, as it came in."""
        return self.ctx.route(self.node, self.dst, self.h.src, self.h.iface)

    def seen(self) -> tuple:
        return ("capture", "entered-never-left", {"summary": self.h.summary, "node": self.node, "iface": self.h.iface})

    def lead(self, v: Verdict) -> Verdict:
        seen = self.seen()
        return v.lead(self.node, seen[0], seen[1], **seen[2])


def _stray_route(ctx: Context, node: str, prefix: str, src: str, iface: str, net: str) -> tuple[str, ...] | None:
    """A route the lab file does not declare, wider than the network the tunnel carries for
    ``src``, that takes ``src``'s way back away from ``iface``: without it the next route leads
    back into ``iface``, so it is taken out (a narrower route into ``iface`` would leave the
    rest of it wrong)."""
    if addr.prefixlen(prefix) >= addr.prefixlen(net):
        return None
    fam = addr.family(src)
    n = ctx.lab.nodes.get(node)
    if any(r.dst == prefix and not r.table and ctx.declared(r.stage) for r in (n.routes if n else ())):
        return None
    routes = ctx.f(node).routes_of(fam)
    here = next((r for r in routes if r.dst == prefix), None)
    nxt = addr.longest(src, [r for r in routes if r.dst != prefix], key=lambda r: r.dst)
    if here is None or nxt is None or nxt.dev != iface:
        return None
    return (*(("ip", "-6") if fam == 6 else ("ip",)), "route", "del", prefix, *(("via", here.via) if here.via else ()))


def reverse_path(t: Transit) -> Verdict | None:
    """IPv4: the kernel's input route lookup fails (EXDEV/EINVAL) when the reverse-path check does;
    IPv6: a reverse-path rule of the firewall dropped it before routing."""
    ctx, node, h = t.ctx, t.node, t.h
    failed = rp_failed(ctx, node, h.iface, t.dst, h.src)
    dropped = rp_dropped(ctx, node, h.iface, h.src) if failed is None else None
    if failed is None and dropped is None:
        return None
    if failed:
        back = failed[1]
        v = rp_verdict(ctx, node, h.iface, t.phase, t.dst, h.src, t.params, t.seen(), failed)
    else:
        back = dropped[2]
        v = rp_rule_verdict(ctx, node, h.iface, t.phase, h.src, t.params, t.seen(), dropped)
    prefix = ctx.prefixes.get((node, h.src))
    net = ctx.covering_net(h.src)
    stray = _stray_route(ctx, node, prefix, h.src, h.iface, net) if prefix else None
    ip = ("ip", "-6") if addr.family(h.src) == 6 else ("ip",)
    if stray:
        v.fixes(node, stray)
    elif prefix and addr.prefixlen(prefix) >= addr.prefixlen(net):
        v.fixes(node, (*ip, "route", "replace", prefix, "dev", h.iface))
    elif prefix or back.ok:
        v.fixes(node, (*ip, "route", "add", net, "dev", h.iface))
    elif dropped:
        v.fixes(node, *firewall.loosen(dropped[0]))
    else:
        v.fixes(node, ("sysctl", "-w", "net.ipv4.conf.all.rp_filter=2"),
                ("sysctl", "-w", f"net.ipv4.conf.{h.iface}.rp_filter=2"))
    return v


def forwarding_off(t: Transit) -> Verdict | None:
    """IPv4: ``net.ipv4.ip_forward``; IPv6: ``net.ipv6.conf.all.forwarding`` (the one switch that
    turns routing on; the per-interface ones follow it)."""
    key = "net.ipv6.conf.all.forwarding" if t.ctx.family == 6 else "net.ipv4.ip_forward"
    if t.f.sysctl.get(key) != "0":
        return None
    v = Verdict("forwarding-disabled", Stop(t.node, t.h.iface, t.phase), params={**t.params, "key": key})
    v.add(t.node, *t.seen()[:2], **t.seen()[2])
    v.add(t.node, "sysctl", "forward-off" if t.ctx.family == 4 else "forward6-off")
    return v.fixes(t.node, ("sysctl", "-w", f"{key}=1"))


def routed_elsewhere(t: Transit) -> Verdict | None:
    """The kernel routes the packet elsewhere than the interface that should carry it (its own
    network there, a tunnel, the lab file's route), where a filter may have caught it: that
    interface is down or gone, or (when the firewall would let the packet go the right way) the
    route is wrong, whatever dropped the packet afterwards."""
    ctx, node, r = t.ctx, t.node, t.r
    want, so_far = intended_dev(ctx, node, t.dst)
    if not (want and so_far and (not r.ok or r.dev != want)):
        return None
    down = link_restore(ctx, node, want, t.phase)
    if down:
        t.lead(down)
        if r.ok:
            down.add(node, "route", "route-get-iif", dst=t.dst, src=t.h.src, iif=t.h.iface, dev=r.dev)
        return down
    if r.ok and not no_route(r) and not ctx.on_link(node, t.dst) and _accepts(t, want):
        v = Verdict("route-missing", Stop(node, t.h.iface, t.phase),
                    params={**t.params, **way(want if ctx.is_wg(node, want) else None)})
        v.add(node, *t.seen()[:2], **t.seen()[2])
        v.add(node, "route", "routed-not-by", dst=t.dst, src=t.h.src, iif=t.h.iface, dev=r.dev, want=want)
        return v.fixes(node, *fixes.restore_route(ctx, node, t.dst))
    return None


def _accepts(t: Transit, out: str) -> bool:
    """Would the forward hook let a new packet from the input interface out of ``out``? Judged by
    interfaces alone: rules that ask more (addresses, ports) are passed over."""
    got = t.f.fw.decide("forward", Packet(t.ctx.family, iif=t.h.iface, oif=out))
    return got is None or got[0] == "accept"


def filtered_here(t: Transit) -> Verdict | None:
    out = t.r.dev if t.r.ok and not no_route(t.r) else None
    drops = lost(t.ctx, t.node, "forward", out and packet(t.ctx, t.node, t.h, t.phase, iif=t.h.iface, oif=out, dst=t.dst))
    if not drops:
        return None
    c, n = drops[0]
    v = filtered("forward-filtered", t.node, t.h.iface, t.phase, c, n, {**t.params, "out": out or "?"}, seen=t.seen())
    v.add(t.node, "route", "route-get-iif", dst=t.dst, src=t.h.src, iif=t.h.iface, dev=out or "-")
    if t.phase == "reply":
        for ct in t.f.conntrack:
            v.add(t.node, "conntrack", "conntrack", o_src=ct[0], o_dst=ct[1], r_src=ct[2], r_dst=ct[3],
                  nat=("@", "word.snat" if ct[3] != ct[0] else "word.no-nat"))
    return v.fixes(t.node, let_through(t.ctx, t.node, "forward", c, t.h.iface, out, t.phase))


def unroutable(t: Transit) -> Verdict | None:
    if not no_route(t.r):
        return None
    ctx = t.ctx
    v = Verdict("route-missing", Stop(t.node, t.h.iface, t.phase), params={**t.params, **way(ctx.wg_iface(t.node, t.dst))})
    v.add(t.node, *t.seen()[:2], **t.seen()[2])
    v.add(t.node, "route", "route-get-iif-error", dst=t.dst, src=t.h.src, iif=t.h.iface, error=t.r.error or t.r.type)
    return v.fixes(t.node, *fixes.restore_route(ctx, t.node, t.dst))


def out_link_down(t: Transit) -> Verdict | None:
    """The interface it would leave by (or the far end of its cable) is down."""
    down = link_restore(t.ctx, t.node, t.r.dev, t.phase)
    if down:
        return t.lead(down)
    far = fixes.far_end(t.ctx, t.node, t.r.dev)
    if far:
        down = link_restore(t.ctx, far[0], far[1], t.phase)
        if down:
            return t.lead(down)
    return None


def next_hop_silent(t: Transit) -> Verdict | None:
    if t.ctx.is_wg(t.node, t.r.dev):
        return None
    return neighbor(t.ctx, t.node, t.r.dev, t.r.via or t.dst, bool(t.r.via), t.dst, t.phase, seen=t.h)


def too_big(t: Transit) -> Verdict | None:
    out = t.r.dev
    link = t.f.link(out)
    if not (link and t.ctx.res.probe.get("size") and t.h.length > link.mtu):
        return None
    v = Verdict("mtu", Stop(t.node, out, t.phase), params={**t.params, "iface": out, "mtu": link.mtu,
                                                          "size": t.h.length, **mtu_words(t.ctx, t.node, out)})
    v.add(t.node, "link", "mtu-smaller" if t.ctx.family == 4 else "mtu-smaller6", iface=out, mtu=link.mtu,
          size=t.h.length)
    return v.fixes(t.node, *fixes.mtu_fix(t.ctx, t.node, out))


FORWARDING = (reverse_path, forwarding_off, routed_elsewhere, filtered_here, roaming.gone_from_nat, nat.no_return,
              unroutable,
              out_link_down, next_hop_silent, too_big)


def forwarding(ctx: Context, h, phase: str) -> Verdict:
    """The packet entered a node that should forward it, and never left."""
    t = Transit(ctx, h, phase)
    for check in FORWARDING:
        v = check(t)
        if v:
            return v
    return inconsistent(ctx, "forwards", node=t.node, dst=t.dst, dev=t.r.dev)


def far_end_down(ctx: Context, h, phase: str) -> Verdict | None:
    """The interface at the other end of the cable it left by (or the next hop's) is down."""
    ends = []
    far = fixes.far_end(ctx, h.node, h.iface)
    if far:
        ends.append(far)
    nexthop = ctx.route(h.node, h.dst).via or h.dst
    owner = ctx.owner(nexthop)
    if owner and owner != h.node:
        ends += [(owner, l.name) for l in ctx.f(owner).links.values()
                 if any(addr.same_address(a, nexthop) for a in l.addresses)]
    for node, iface in ends:
        v = link_restore(ctx, node, iface, phase)
        if v:
            return v.lead(h.node, "capture", "left", summary=h.summary, node=h.node, iface=h.iface)
    return None
