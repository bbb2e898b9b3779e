"""A packet that left a host in view by a cable and was never seen again: the gap between the hosts.

An operator logs into their own machines, not the ISP's router, the carrier's NAT, a cloud firewall
or the web server; a lab can be diagnosed as if only some of its nodes could be seen (``--only``).
When the probe, or the datagram carrying it, was last seen leaving a host and nothing in view saw
it again, the checks of ``LEFT`` (in order) name what they can: the far end of the cable is down
(forward.py); WireGuard's datagrams went into their own tunnel, or to an endpoint their peer has
left (roaming.py); a VPN source went out toward a destination beyond every host in view, untranslated
by a host that could translate it (``nat-missing``, with its fix); otherwise the gap itself
(``lost-between``): what left which host by which interface toward which address and port, which
host should have seen it next, what is known to lie between (a router from the route, a NAT seen in
the addresses) and what to check on that box. A fix comes only where a host in view can make one.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .. import addr
from . import fixes, nat, roaming
from .common import At, inconsistent
from .context import Context
from .forward import far_end_down
from .verdict import Stop, Verdict

PROTO = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
# Addresses no router of the internet carries (RFC 1918, the carriers' shared space, ULA): a peer
# sent to at one of these, across routers, was never translated on its way out.
UNROUTED = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


@dataclass
class Left(At):
    """A packet seen leaving ``h.node`` by ``h.iface``, and nowhere after."""

    def watched(self, node: str | None) -> bool:
        return bool(node) and node in self.ctx.facts and self.ctx.f(node).readable

    @cached_property
    def peer(self):
        """For a WireGuard datagram: (sender, its interface, the peer it is sent to)."""
        if self.h.layer != "underlay":
            return None
        inner = self.ctx.carried_by(self.h)
        wg, p = roaming.by_endpoint(self.ctx, inner.node, self.h.dst, self.h.dport)
        if p is None:              # its endpoint moved during the probe (learned from a datagram)
            wg, p = roaming.carrying(self.ctx, inner.node, inner.iface, inner.dst)
        return (inner.node, wg, p) if p is not None else None

    @cached_property
    def next_host(self) -> str | None:
        """The host in view that should have seen it next: the peer a datagram is for, the owner of
        the destination, or of the gateway."""
        ctx = self.ctx
        if self.peer:
            who = ctx.key_owner(self.peer[2].public_key)
            if self.watched(who):
                return who
        for ip in (self.h.dst, ctx.route(self.node, self.h.dst).via):
            who = ctx.owner(ip) if ip else None
            if who and who != self.node and self.watched(who):
                return who
        return None

    @cached_property
    def beyond_view(self) -> bool:
        """Does the cable lead to something out of view (nothing at its far end is watched)?"""
        far = fixes.far_end(self.ctx, self.node, self.h.iface)
        return far is None or not self.watched(far[0])

    @cached_property
    def via(self) -> str | None:
        r = self.ctx.route(self.node, self.h.dst)
        return r.via if r.ok and r.via and not roaming.held_now(self.ctx, r.via) else None


def untranslated(g: Left) -> Verdict | None:
    """The request left the host where it came out of a tunnel, with its VPN source, toward a
    destination beyond every host in view (the internet behind a full tunnel), untranslated."""
    ctx, h = g.ctx, g.h
    if h.layer != "inner" or h.role != "request" or not g.beyond_view or ctx.owner(h.dst):
        return None
    return nat.missing_at_exit(ctx, h.src, h.dst)


def between(g: Left) -> Verdict | None:
    """The gap itself: nothing wrong on the hosts in view, and the packet lost between them."""
    ctx, h = g.ctx, g.h
    if not g.beyond_view:
        return None
    port = h.dport if h.proto in (6, 17) else None
    nxt = g.next_host
    datagram = h.layer == "underlay"
    v = Verdict("lost-between", Stop(g.node, h.iface, g.phase),
                params={"node": g.node, "iface": h.iface, "dst": h.dst, "proto": PROTO.get(h.proto, str(h.proto)),
                        "port": f" {port}" if port else "", "next": nxt or "-",
                        "what": ("@", f"word.left-{g.phase}{'-datagram' if datagram else ''}"),
                        "seen_next": ("@", "word.next-host" if nxt else "word.next-none")})
    v.add(g.node, "capture", "left-unseen", summary=h.summary, node=g.node, iface=h.iface)
    if g.via:
        v.add(g.node, "route", "gap-router", via=g.via, dst=h.dst, node=g.node)
    check, via = _nat_seen(g, v) or ("check-udp-port" if datagram or h.proto == 17 else
                                     "check-destination" if nxt is None else "check-between", g.via)
    v.add(g.node, "state", check, node=g.node, next=nxt or h.dst, dst=h.dst, port=port or "-",
          via=via or h.dst, peer=g.peer and ctx.key_owner(g.peer[2].public_key) or "-")
    return v


def _nat_seen(g: Left, v: Verdict) -> tuple[str, str | None] | None:
    """What the addresses tell of a NAT between the hosts, as evidence; the check it asks for, and
    the router to look at first."""
    ctx, h = g.ctx, g.h
    if not g.peer:
        return None
    sender, _, p = g.peer
    x = ctx.key_owner(p.public_key)
    if not x or not g.watched(x):
        return None
    mine = roaming.own_addresses(ctx, x)
    if any(addr.same_address(h.dst, m) for m in mine):
        # sent to the peer's own address: a private one across a router means nothing translated it
        if ctx.on_link(g.node, h.dst) or not addr.in_nets(h.dst, UNROUTED):
            return None
        v.add(x, "nat", "gap-no-nat", peer=x, ip=h.dst, node=sender)
        back = ctx.route(x, h.src)            # the peer's own way out: its NAT router should be there
        return "check-nat-missing", back.via if back.ok and back.via else g.via
    v.add(x, "nat", "gap-nat", peer=x, endpoint=addr.endpoint(h.dst, h.dport), addrs=", ".join(mine) or "-",
          node=sender)
    return "check-nat-mapping", g.via


def left(ctx: Context, h, phase: str) -> Verdict:
    """It left a node by a cable and never arrived anywhere in view."""
    g = Left(ctx, h, phase)
    down = far_end_down(ctx, h, phase)
    if down:
        return down
    for check in LEFT:
        v = check(g)
        if v:
            return v
    return inconsistent(ctx, "left-lost", node=h.node, iface=h.iface)


LEFT = (roaming.looped, roaming.stale_endpoint, untranslated, between)
