"""A whole-path check: a WireGuard datagram went to where its peer was, and the peer is not there.

A peer behind NAT that the other side never dials (no Endpoint for it in the other's
configuration) is reached at the address its datagrams last came from. When that address goes
away (the home router got a new public address, a carrier's NAT mapping expired) the other side
keeps sending there, to nobody, until the peer speaks again: WireGuard heals only when the
roaming side sends. Without a persistent keepalive it sends only when it has something to send.
The fix gives it a keepalive, which also sends one at once.
"""
from __future__ import annotations

from .. import addr
from .context import Context
from .verdict import Stop, Verdict

KEEPALIVE = 25                  # what the installers write for clients behind NAT


def _live(ctx: Context, ip: str) -> bool:
    return any(addr.same_address(a, ip) for f in ctx.facts.values() for l in f.links.values() for a in l.addresses)


def moved_away(ctx: Context) -> Verdict | None:
    res = ctx.res
    for u in res.hops:
        if u.layer != "underlay" or u.dir != "out" or u.carries is None:
            continue
        inner = res.hops[u.carries]
        if inner.node != u.node or not ctx.is_wg(inner.node, inner.iface) or _live(ctx, u.dst):
            continue
        was = ctx.lab.address_owner(u.dst)
        sender, roamer = u.node, ctx.owner(inner.dst)
        if was is None or roamer is None or roamer == sender or ctx.model_endpoint(sender, roamer):
            return None
        entry = next((p for p in ctx.peers(sender) if p.public_key == ctx.key_of(roamer)), None)
        if entry is None or addr.host_of(entry.endpoint or "") != u.dst:
            return None
        back = next(((w.name, p) for w in ctx.f(roamer).wg for p in w.peers if p.public_key == ctx.key_of(sender)),
                    None)
        v = Verdict("wg-stale-session", Stop(sender, inner.iface, u.role),
                    params={"node": sender, "iface": inner.iface, "peer": roamer, "endpoint": entry.endpoint,
                            "gone": u.dst, "was": was[0], "variant": "roamed"})
        v.add(sender, "capture", "sent-to-gone", summary=u.summary, address=u.dst, was=was[0])
        v.add(sender, "wireguard", "peer-handshake", peer=roamer, endpoint=entry.endpoint, age=ctx.handshake_age(entry))
        if back is not None:
            wg, p = back
            v.add(roamer, "wireguard", "keepalive", peer=sender, keepalive=p.keepalive or "off")
            if not p.keepalive:
                v.fixes(roamer, ("wg", "set", wg, "peer", p.public_key, "persistent-keepalive", str(KEEPALIVE)))
        return v
    return None
