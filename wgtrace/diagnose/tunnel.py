"""Checks where a packet goes into a WireGuard interface: no datagram carried it (``send``, the
ordered ``SEND`` checks), or the datagram went to another peer than the one meant (``wrong_peer``,
a whole-path check).

WireGuard drops silently, so the evidence is the configuration: which peer's allowed-ips hold
the address (the longest prefix wins, as in WireGuard's own lookup), where that peer is, when
the last handshake was. When nothing is wrong on this side, the handshake is followed to the
other end (endpoint.py) and the verdict is found there.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .. import addr
from ..addr import in_nets, longest
from . import firewall, fixes, roaming
from .common import At, drops as lost, filtered, peer_list, who
from .firewall import Packet
from .context import Context
from .endpoint import SESSION_LIFE, receive, remote_state, restart_from
from .verdict import Stop, Verdict


def carrier(peers, dst: str):
    """The peer WireGuard gives ``dst`` to: the longest allowed-ips prefix that holds it."""
    hit = longest(dst, [(a, p) for p in peers for a in p.allowed_ips], key=lambda x: x[0])
    return hit[1] if hit else None


@dataclass
class Sent(At):
    """A packet that went into a WireGuard interface and was not seen carried."""

    @property
    def wg(self) -> str:
        return self.h.iface

    @cached_property
    def peers(self):
        return peer_list(self.ctx, self.node, self.wg)

    @cached_property
    def peer(self):
        return carrier(self.peers, self.h.dst)

    @cached_property
    def peer_node(self) -> str | None:
        return self.ctx.key_owner(self.peer.public_key) if self.peer else None

    @cached_property
    def params(self) -> dict:
        p = {"node": self.node, "iface": self.wg, "dst": self.h.dst, "src": self.h.src}
        if self.peer:
            p["peer"] = self.peer_node or self.peer.public_key[:12] + "…"
        return p

    def into_wg(self) -> tuple:
        return ("capture", "into-wg-no-datagram", {"summary": self.h.summary, "iface": self.wg, "node": self.node})

    @cached_property
    def no_handshake(self) -> Verdict:
        """The finding when the peer is right and no data went: no session with it."""
        ctx, node, p = self.ctx, self.node, self.peer
        v = Verdict("wg-no-handshake", Stop(node, self.wg, self.phase), params=dict(self.params))
        v.add(node, "capture", "into-wg-no-data", summary=self.h.summary, iface=self.wg)
        v.add(node, "wireguard", "peer-handshake", peer=self.params["peer"], endpoint=p.endpoint or "(none)",
              **ctx.handshake(p))
        sent = [x for x in ctx.res.handshakes if x.node == node and x.dir == "out" and x.wg_type == 1]
        if sent:
            v.add(node, "capture", "handshakes-sent", n=len(sent), summary=sent[0].summary)
        return v


def no_peer_covers(s: Sent) -> Verdict | None:
    """Cryptokey routing on the sending side: no peer's allowed-ips hold the destination."""
    if s.peer is not None:
        return None
    ctx, node, peers = s.ctx, s.node, s.peers
    want = ctx.peer_node_for(node, s.h.dst)
    if want is None and peers:           # no lab file: the peer the route points at, or the only one
        r = ctx.route(node, s.h.dst)
        by_route = next((p for p in peers if r.via and in_nets(r.via, p.allowed_ips)), None)
        target = by_route or (peers[0] if len(peers) == 1 else None)
        want = ctx.key_owner(target.public_key) if target else None
    v = Verdict("wg-allowed-ips", Stop(node, s.wg, s.phase), params={**s.params, "peer": want or "?"})
    v.add(node, *s.into_wg()[:2], **s.into_wg()[2])
    for p in peers:
        v.add(node, "wireguard", "peer-allowed", peer=who(ctx, p.public_key), ips=",".join(p.allowed_ips) or "(none)")
    if want:
        current = next((p for p in peers if p.public_key == ctx.key_of(want)), None)
        v.fixes(node, *fixes.peer_fix(ctx, node, s.wg, current, want, need=[ctx.covering_net(s.h.dst)]))
    return v


def live_session(ctx: Context, peer) -> bool:
    """Does the node hold a session with ``peer`` that data can still use?"""
    return bool(peer.latest_handshake and ctx.now and ctx.now - peer.latest_handshake < SESSION_LIFE)


def own_output_drops(s: Sent) -> Verdict | None:
    """The node's own firewall refused WireGuard's datagram (a kill switch without the tunnel's mark)."""
    p = s.peer
    fam = addr.family(addr.host_of(p.endpoint)) if p.endpoint else None
    out = Packet(fam or s.ctx.family, iif="", proto="udp", dport=addr.port_of(p.endpoint) if p.endpoint else None,
                 dst=addr.host_of(p.endpoint) if p.endpoint else None, src=None)
    drops = lost(s.ctx, s.node, "output", out if fam else None)
    if not drops and fam and not live_session(s.ctx, p):
        # no session, so nothing had to leave during the probe but a handshake, and WireGuard
        # sends one at most every 5 s: what the rules would do with it is the evidence
        drops = s.ctx.f(s.node).fw.ruled("output", out)
    if not drops:
        return None
    c, n = drops[0]
    v = filtered("output-filtered", s.node, s.wg, s.phase, c, n, s.params, seen=s.into_wg())
    v.add(s.node, "wireguard", "peer-endpoint", peer=s.params["peer"], endpoint=p.endpoint or "(none)")
    if c.is_policy or c.catch_all:
        port = addr.port_of(p.endpoint) if p.endpoint else None
        return v.fixes(s.node, firewall.accept(s.ctx.f(s.node).fw, "output", c.family, like=c, first=c.catch_all,
                                               proto="udp", dport=port, table=False))
    return v.fixes(s.node, firewall.undo(c))


def unknown_peer_key(s: Sent) -> Verdict | None:
    """The peer that carries the address has a key no node has: a key pasted wrong."""
    if s.peer_node is not None:
        return None
    ctx, node, p = s.ctx, s.node, s.peer
    v = s.no_handshake
    want = ctx.peer_node_for(node, s.h.dst, p)
    v.params["peer"] = want or s.params["peer"]
    v.add(node, "wireguard", "unknown-key", key=p.public_key[:12] + "…")
    if want:
        cmds = fixes.peer_fix(ctx, node, s.wg, p, want)
        v.fixes(node, *cmds)
        if cmds and "endpoint" not in cmds[-1]:
            restart_from(ctx, v, want, node)
    return v


def endpoint_not_declared(s: Sent) -> Verdict | None:
    """The peer's endpoint is not the one the lab file gives it."""
    declared = s.ctx.model_endpoint(s.node, s.peer_node)
    if not declared or s.peer.endpoint == declared:
        return None
    v = s.no_handshake
    v.add(s.node, "wireguard", "endpoint-not-declared", peer=s.peer_node, endpoint=s.peer.endpoint or "(none)",
          declared=declared)
    return v.fixes(s.node, *fixes.peer_fix(s.ctx, s.node, s.wg, s.peer, s.peer_node))


def far_side(s: Sent) -> Verdict | None:
    """Nothing to change here: follow the handshake to the other side and ask it."""
    ctx = s.ctx
    arrived = [x for x in ctx.res.handshakes if x.node == s.peer_node and x.dir == "in"]
    far = receive(ctx, arrived[-1], s.phase, sender=s.node) if arrived else \
        remote_state(ctx, s.node, s.peer_node, s.phase, s.peer)
    if far is None or far.cause == "inconsistent":
        return None
    far.evidence = s.no_handshake.evidence + far.evidence
    return far


SEND = (no_peer_covers, own_output_drops, unknown_peer_key, endpoint_not_declared, roaming.no_endpoint,
        roaming.looped_send, far_side)


def send(ctx: Context, h, phase: str) -> Verdict:
    """The packet went into ``h.iface`` and no WireGuard datagram left the node for it."""
    s = Sent(ctx, h, phase)
    for check in SEND:
        v = check(s)
        if v:
            return v
    return s.no_handshake


def wrong_peer(ctx: Context) -> Verdict | None:
    """A node sent a tunnel-bound packet to another peer than the lab file's, because that peer's
    allowed-ips hold the destination now: an address belongs to one peer of an interface only,
    and a ``wg set`` that names a network another peer has takes it from that peer, silently."""
    res = ctx.res
    for u in res.hops:
        if u.layer != "underlay" or u.dir != "out" or u.carries is None:
            continue
        i = res.hops[u.carries]
        if i.node != u.node or i.layer != "inner" or not ctx.is_wg(i.node, i.iface):
            continue
        node, wg, dst = i.node, i.iface, i.dst
        got = carrier(peer_list(ctx, node, wg), dst)
        n = ctx.lab.nodes.get(node)
        w = n.wireguard.get(wg) if n else None
        if got is None or w is None or not ctx.declared(w.stage):
            continue
        hit = longest(dst, [(a, p) for p in w.peers if ctx.declared(p.stage) for a in p.allowed_ips],
                      key=lambda x: x[0])
        meant = hit[1] if hit else None
        got_node = ctx.key_owner(got.public_key)
        if meant is None or got_node is None or got_node == meant.peer:
            continue
        want = meant.peer
        v = Verdict("wg-allowed-ips", Stop(node, wg, i.role),
                    params={"node": node, "iface": wg, "dst": dst, "src": i.src, "peer": want})
        v.add(node, "capture", "sent-to-other-peer", summary=i.summary, iface=wg, got=got_node, dst=dst,
              ips=",".join(got.allowed_ips), want=want)
        current = next((p for p in peer_list(ctx, node, wg) if p.public_key == ctx.key_of(want)), None)
        if current is not None:
            v.add(node, "wireguard", "peer-allowed", peer=want, ips=",".join(current.allowed_ips) or "(none)")
        return v.fixes(node, *fixes.peer_fix(ctx, node, wg, current, want, need=[ctx.covering_net(dst)]))
    return None
