"""A VPN source that leaves for the world untranslated: where the tunnel ends, NAT is missing.

A full tunnel sends everything to the server, which must translate the VPN's source addresses to
its own before they go on: nothing beyond it knows the VPN's network, so an answer to a VPN
address finds no way back. When the destination is out of view (the internet, a web server) the
capture shows it from this side only: the request left the host where it came out of the tunnel,
with its VPN source untranslated (gap.py asks), or the answer came back to a router in view that
has no way to the VPN (forward.py asks). Either way the node that should translate is the one
where the request came out of the tunnel; ``missing_at_exit`` makes that verdict, with its fix.
"""
from __future__ import annotations

from .. import addr
from . import firewall
from .context import Context
from .verdict import Stop, Verdict


def exit_of(ctx: Context, src: str):
    """The hop by which the request with VPN source ``src`` left the node it came out of a tunnel on,
    still untranslated (None if there is none)."""
    hops = ctx.res.hops
    for i, h in enumerate(hops):
        if h.layer != "inner" or h.role != "request" or h.dir != "in" or h.src != src or not ctx.is_wg(h.node, h.iface):
            continue
        out = next((o for o in hops[i + 1:] if o.node == h.node and o.layer == "inner" and o.role == "request"
                    and o.dir == "out" and not ctx.is_wg(o.node, o.iface)), None)
        if out is not None and out.src == src:
            return out
    return None


def missing_at_exit(ctx: Context, src: str, dst: str) -> Verdict | None:
    """``src`` is a VPN address that went on toward ``dst`` (outside every tunnel) untranslated from
    the node where it left the tunnel: that node should masquerade it."""
    if not addr.in_nets(src, ctx.vpn_nets()) or ctx.behind_tunnel(dst):
        return None
    out = exit_of(ctx, src)
    if out is None:
        return None
    node, f = out.node, ctx.f(out.node)
    vpn = next((n for n in ctx.vpn_nets() if addr.in_nets(src, [n])), addr.host_net(src))
    v = Verdict("nat-missing", Stop(node, out.iface, "reply"),
                params={"node": node, "iface": out.iface, "dst_node": dst, "src": src,
                        "gw": ("@", "word.gateway-unknown"), "vpn": vpn})
    v.add(node, "capture", "left-untranslated", summary=out.summary, node=node, iface=out.iface, src=src)
    masq = f.fw.translating(ctx.family)
    v.add(node, "nat", "nat-unmatched" if masq else "no-masquerade", rules="; ".join(c.text for c in masq))
    return v.fixes(node, firewall.masquerade(f.fw, ctx.family, vpn, out.iface))


def no_return(t) -> Verdict | None:
    """forward.FORWARDING: an answer for a VPN address reached a router in view that has no way to the
    VPN (the internet knows none), and the request had left the tunnel untranslated."""
    ctx, h = t.ctx, t.h
    if t.phase != "reply" or h.layer != "inner" or t.r.ok and t.r.type not in ("unreachable", "blackhole", "prohibit"):
        return None
    v = missing_at_exit(ctx, t.dst, h.src)
    if v is None:
        return None
    v.add(t.node, "capture", "entered-never-left", summary=h.summary, node=t.node, iface=h.iface)
    return v.add(t.node, "route", "route-get-iif-error", dst=t.dst, src=h.src, iif=h.iface, error=t.r.error or t.r.type)
