"""WireGuard peers that roam or stay silent, and datagrams routed into their own tunnel.

WireGuard learns where a peer is from what it receives, never from anywhere else. A peer behind
NAT that sends nothing by itself (no persistent keepalive) keeps its place only while its NAT
remembers it: when the mapping expires or the NAT's public address changes, the other side goes on
sending to the old address, and nothing reaches the peer until the peer speaks again. A peer the
other side has no endpoint for (not heard from since a restart) cannot be sent to either, until it
speaks first. And a full tunnel must keep WireGuard's own datagrams out of the tunnel (wg-quick's
fwmark and its rule, or a route for the endpoint beside 0.0.0.0/1 and 128.0.0.0/1): without
that they go into the tunnel they carry, a routing loop at the client.

The checks name the peer whose endpoint is stale or absent, who has to speak first and when it
heals by itself, and put the fix on the side that can make it: a persistent keepalive on the
roaming side (setting it sends a keepalive at once: the packet that heals it now), or an endpoint
on the silent side when the other is on one of its own networks; for the loop, the fwmark or the
endpoint's route put back. They are entries of the place tuples: tunnel.SEND (``no_endpoint``,
``looped_send``), endpoint.RECEIVE (``nat_forgot``), forward.FORWARDING (``gone_from_nat``) and
gap.LEFT (``looped``, ``stale_endpoint``).
"""
from __future__ import annotations

from .. import addr
from .context import Context
from .verdict import Stop, Verdict

KEEPALIVE = "25"            # seconds: what installers write, well below any NAT's UDP timeout


def entry_for(ctx: Context, node: str, other: str):
    """(WireGuard interface, peer) of ``node``'s entry for ``other``'s key, or (None, None)."""
    key = ctx.key_of(other)
    for w in ctx.f(node).wg:
        for p in w.peers:
            if key and p.public_key == key:
                return w.name, p
    return None, None


def by_endpoint(ctx: Context, node: str, ip: str, port: int):
    """(interface, peer) of ``node``'s peer that is sent to ``ip``:``port``, or (None, None)."""
    for w in ctx.f(node).wg:
        for p in w.peers:
            if p.endpoint and addr.same_address(addr.host_of(p.endpoint), ip) and addr.port_of(p.endpoint) == port:
                return w.name, p
    return None, None


def carrying(ctx: Context, node: str, wg: str, dst: str):
    """(interface, peer) of ``node``'s peer on ``wg`` whose allowed-ips take ``dst`` (longest prefix)."""
    hit = addr.longest(dst, [(a, p) for w in ctx.f(node).wg if w.name == wg for p in w.peers for a in p.allowed_ips],
                       key=lambda x: x[0])
    return (wg, hit[1]) if hit else (None, None)


def own_addresses(ctx: Context, node: str) -> list[str]:
    return [addr.bare(a) for l in ctx.f(node).links.values() for a in l.addresses if not addr.is_loopback(a)]


def keepalive(ctx: Context, starter: str, node: str) -> tuple[str, ...] | None:
    """On ``starter``: a persistent keepalive toward ``node`` (setting it sends one at once)."""
    wg, back = entry_for(ctx, starter, node)
    return ("wg", "set", wg, "peer", back.public_key, "persistent-keepalive", KEEPALIVE) if back else None


def stale(ctx: Context, node: str, wg: str, peer, phase: str, lead=None) -> Verdict | None:
    """``node`` sends to ``peer`` at an endpoint where it no longer is: the peer is behind a NAT (the
    endpoint is none of its own addresses) and sends nothing by itself, so the NAT's mapping (or its
    public address) is gone and only the peer can make a new one."""
    x = ctx.key_owner(peer.public_key) if peer is not None else None
    if not x or not peer.endpoint or not ctx.f(x).readable:
        return None
    ip = addr.host_of(peer.endpoint)
    mine = own_addresses(ctx, x)
    if any(addr.same_address(ip, m) for m in mine):
        return None                     # it is the peer's own address: not a NAT's mapping
    _, back = entry_for(ctx, x, node)
    if back is None or back.keepalive:
        return None                     # the peer keeps its mapping alive: something else lost it
    v = Verdict("wg-no-handshake", Stop(node, wg, phase), params={"node": node, "iface": wg, "peer": x})
    if lead:                            # (node, kind, key, params): what was seen
        v.add(lead[0], lead[1], lead[2], **lead[3])
    v.add(node, "wireguard", "endpoint-learned", node=node, peer=x, endpoint=peer.endpoint, **ctx.handshake(peer))
    v.add(x, "link", "behind-nat", peer=x, ip=ip, addrs=", ".join(mine) or "-")
    v.add(x, "wireguard", "silent-peer", peer=x, node=node)
    v.add(x, "wireguard", "heals-when", peer=x, node=node)
    fix = keepalive(ctx, x, node)
    return v.fixes(x, fix) if fix else v


def no_endpoint(s) -> Verdict | None:
    """tunnel.SEND: the peer that carries the packet has no endpoint: ``s.node`` cannot send to it
    until it speaks first (it has not since WireGuard here started, or its entry was made anew)."""
    ctx, node, p = s.ctx, s.node, s.peer
    if p is None or p.endpoint or s.peer_node is None:
        return None
    x = s.peer_node
    v = Verdict("wg-no-handshake", Stop(node, s.wg, s.phase), params=dict(s.params))
    v.add(node, *s.into_wg()[:2], **s.into_wg()[2])
    v.add(node, "wireguard", "endpoint-unknown", peer=x, node=node)
    _, back = entry_for(ctx, x, node)
    if not ctx.f(x).readable or back is None:
        return v
    if back.endpoint:
        v.add(x, "wireguard", "must-speak-first", peer=x, node=node, endpoint=back.endpoint)
        if not back.keepalive:
            v.add(x, "wireguard", "silent-peer", peer=x, node=node)
        v.add(x, "wireguard", "heals-when", peer=x, node=node)
    else:
        v.add(x, "wireguard", "neither-knows", peer=x, node=node)
    direct = _on_my_network(ctx, node, x)
    if direct:                          # the silent side can name the other's place itself
        return v.fixes(node, ("wg", "set", s.wg, "peer", p.public_key, "endpoint", direct))
    fix = keepalive(ctx, x, node) if back.endpoint else None
    if fix and _session_gone(ctx, p, back):
        # x still holds a session node has lost: its keepalive would go unread; x starts afresh
        from . import fixes
        v.add(x, "wireguard", "session-gone", peer=x, node=node, **ctx.handshake(back))
        xwg = fix[2]
        v.fixes(x, ("wg", "set", xwg, "peer", back.public_key, "remove"),
                *fixes.peer_fix(ctx, x, xwg, None, node, need=back.allowed_ips))
    return v.fixes(x, fix) if fix else v


def _session_gone(ctx: Context, mine, theirs) -> bool:
    """Does the other side still hold a session (under 180 s old) this side no longer has?"""
    return bool(theirs.latest_handshake and ctx.now and ctx.now - theirs.latest_handshake < 180
                and (not mine.latest_handshake or mine.latest_handshake < theirs.latest_handshake - 1))


def _on_my_network(ctx: Context, node: str, x: str) -> str | None:
    """``x``'s endpoint as ``node`` can name it without anyone's NAT: an address of ``x`` on one of
    ``node``'s own networks, and the port its WireGuard listens on."""
    port = next((w.listen_port for w in ctx.f(x).wg if w.listen_port), 0)
    if not port:
        return None
    wg_links = set(ctx.f(node).wg_names) | set(ctx.f(x).wg_names)
    mine = [a for name, l in ctx.f(node).links.items() if name not in wg_links for a in l.addresses
            if not addr.is_loopback(a)]
    for name, l in ctx.f(x).links.items():
        if name in wg_links:
            continue
        for a in l.addresses:
            if addr.in_nets(addr.bare(a), mine) and not addr.is_loopback(a):
                return addr.endpoint(addr.bare(a), port)
    return None


def loop(ctx: Context, node: str, wg: str, peer, phase: str) -> Verdict | None:
    """WireGuard's own datagrams for ``peer``'s endpoint are routed into ``wg`` itself (no fwmark
    keeps them out): a routing loop at this node. The fix puts wg-quick's fwmark back (its rule
    asks for one), or a route for the endpoint beside the tunnel's."""
    if peer is None or not peer.endpoint:
        return None
    ip = addr.host_of(peer.endpoint)
    w = next((w for w in ctx.f(node).wg if w.name == wg), None)
    r = ctx.route(node, ip)
    if w is None or w.fwmark or not r.ok or not ctx.is_wg(node, r.dev):
        return None                     # a marked datagram takes another lookup: not judged here
    from .common import way
    v = Verdict("route-missing", Stop(node, wg, phase),
                params={"node": node, "iface": wg, "dst": ip, **way(), "way": ("@", "word.way-around")})
    v.add(node, "route", "endpoint-into-tunnel", endpoint=ip, dev=r.dev, wg=wg)
    n = ctx.lab.nodes.get(node)
    mark = next((x.fwmark for x in (n.rules if n else ()) if x.invert and x.fwmark), None)
    if mark:
        v.add(node, "wireguard", "fwmark-lost", wg=wg, mark=hex(mark))
        return v.fixes(node, ("wg", "set", wg, "fwmark", str(mark)))
    fam = addr.family(ip)
    out = next((x for x in ctx.f(node).routes_of(fam) if x.dst == "default" and x.via and not ctx.is_wg(node, x.dev)),
               None)
    if out is not None:
        v.fixes(node, (*(("ip", "-6") if fam == 6 else ("ip",)), "route", "add", addr.host_net(ip),
                       "via", out.via, "dev", out.dev))
    return v


def tunnel_loop(ctx: Context) -> Verdict | None:
    """A whole-path check, first of all: a packet went into a tunnel whose own datagrams are routed
    back into it. Before any question of the packet's own route (which a full tunnel without its
    fwmark no longer looks like: its default route leads out of the cable)."""
    for i, h in enumerate(ctx.res.hops):
        if h.layer != "inner" or h.dir != "out" or not ctx.is_wg(h.node, h.iface):
            continue
        carried = [u for u in ctx.res.hops if u.carries == i and u.dir == "out" and not ctx.is_wg(u.node, u.iface)]
        if carried:
            continue
        wg, peer = carrying(ctx, h.node, h.iface, h.dst)
        v = loop(ctx, h.node, h.iface, peer, h.role)
        if v:
            return v.lead(h.node, "capture", "into-wg-no-datagram", summary=h.summary, iface=h.iface, node=h.node)
    return None


def looped_send(s) -> Verdict | None:
    """tunnel.SEND: nothing left for the packet that went into the tunnel, because the datagram that
    would carry it goes into the tunnel itself (a remote capture leaves those out: they are a storm)."""
    v = loop(s.ctx, s.node, s.wg, s.peer, s.phase)
    return v.lead(s.node, *s.into_wg()[:2], **s.into_wg()[2]) if v else None


def looped(g) -> Verdict | None:
    """gap.LEFT: the datagram carrying the packet was seen going into a WireGuard interface."""
    ctx, h = g.ctx, g.h
    if h.layer != "underlay" or not ctx.is_wg(h.node, h.iface):
        return None
    inner = ctx.carried_by(h)
    wg = inner.iface if ctx.is_wg(h.node, inner.iface) else h.iface
    _, peer = by_endpoint(ctx, h.node, h.dst, h.dport)
    v = loop(ctx, h.node, wg, peer, g.phase)
    return v.lead(h.node, "capture", "datagram-into-tunnel", summary=h.summary, iface=h.iface) if v else None


def stale_endpoint(g) -> Verdict | None:
    """gap.LEFT: a datagram left for a peer's learned endpoint and the peer never saw it."""
    ctx, h = g.ctx, g.h
    if h.layer != "underlay":
        return None
    sender = ctx.carried_by(h).node
    wg, peer = by_endpoint(ctx, sender, h.dst, h.dport)
    return stale(ctx, sender, wg, peer, g.phase,
                 lead=(h.node, "capture", "left-unseen", {"summary": h.summary, "node": h.node, "iface": h.iface}))


def nat_forgot(a) -> Verdict | None:
    """endpoint.RECEIVE: the datagram reached a machine that does not listen on its port and is not
    the peer it was meant for: the NAT in front of that peer, which no longer maps it."""
    ctx, h = a.ctx, a.h
    if a.listening is not None:
        return None
    sender = a.inner.node
    wg, peer = by_endpoint(ctx, sender, h.dst, h.dport)
    if peer is None or ctx.key_owner(peer.public_key) in (None, a.node):
        return None
    return stale(ctx, sender, wg, peer, a.phase, lead=(a.node, *a.arrived_on()))


def gone_from_nat(t) -> Verdict | None:
    """forward.FORWARDING: a router cannot pass on a datagram for a peer's learned endpoint (nobody
    has that address any more, or no route leads there): the peer's NAT moved or forgot it."""
    ctx, h = t.ctx, t.h
    if h.layer != "underlay" or h.carries is None:
        return None
    sender = ctx.carried_by(h).node
    wg, peer = by_endpoint(ctx, sender, h.dst, h.dport)
    if peer is None or held_now(ctx, h.dst):
        return None                     # somebody still has that address: not a NAT that moved
    return stale(ctx, sender, wg, peer, t.phase, lead=(t.node, *t.seen()))


def held_now(ctx: Context, ip: str) -> bool:
    """Does a node in view have ``ip`` now (its links, as read; not the lab file's word)?"""
    return any(addr.same_address(addr.bare(a), ip) for f in ctx.facts.values() for l in f.links.values()
               for a in l.addresses)
