"""Everything a verdict may look at, and the questions the rules ask of it.

A ``Context`` holds the trace, every node's facts, the route and neighbour lookups made for the
probe's packets, the nodes' public keys, and the model (the lab file) as the reference a fix
restores. The rules ask the kernel's state first: which interfaces are WireGuard, which peers
carry what, are read from the nodes, never guessed from names.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

from .. import addr
from ..addr import bare, in_nets, longest
from ..model.commands import endpoint_of
from ..model.lab import Lab
from ..nodes.base import RouteLookup
from ..trace.path import Hop, TraceResult
from .facts import NodeFacts


@dataclass
class Context:
    lab: Lab
    res: TraceResult
    facts: dict[str, NodeFacts]
    routes: dict[tuple, RouteLookup] = field(default_factory=dict)   # (node, dst, src, iif)
    prefixes: dict[tuple, str] = field(default_factory=dict)         # (node, dst) -> matching route
    keys: dict[str, str] = field(default_factory=dict)               # node -> public key
    now: float = 0.0                   # when the state was read (handshake ages)
    stage: int | None = None           # the lab's stage (None: the last); later items are not there yet

    @cached_property
    def family(self) -> int:
        """The probe's address family: the questions below are asked of it only."""
        return addr.family(self.res.probe.get("dst_ip") or "") or 4

    # --- the lab file, up to the current stage ------------------------------------------
    def declared(self, stage_name: str | None) -> bool:
        if stage_name is None:
            return True
        idx = self.lab.stage_index(stage_name)
        last = len(self.lab.stages) - 1 if self.stage is None else self.stage
        return idx is not None and idx <= last

    def model_route(self, node: str, dst: str, final: bool = False):
        """The most specific route the lab file declares (so far, or at its end) on ``node`` for ``dst``."""
        n = self.lab.nodes.get(node)
        fam = addr.family(dst)
        routes = [r for r in (n.routes if n else ()) if not r.table and r.family == fam
                  and (final or self.declared(r.stage))]
        return longest(dst, routes, key=lambda r: r.dst)

    def tunnel_nets_of(self, node: str, final: bool = False) -> list[str]:
        """What should go into ``node``'s tunnels: its VPN networks and what its peers carry, in
        the kernel now or in the lab file (so far; ``final``: at its last stage); default routes
        left out."""
        nets, full = set(), set()
        f = self.f(node)
        for w in f.wg:
            link = f.link(w.name)
            nets |= {addr.iface_net(a) for a in (link.addresses if link else [])}
            nets |= {a for p in w.peers for a in p.allowed_ips}
            if w.fwmark:
                full |= {a for p in w.peers for a in p.allowed_ips if addr.is_default(a)}
        n = self.lab.nodes.get(node)
        for w in (n.wireguard.values() if n else ()):
            if final or self.declared(w.stage):
                nets |= {addr.iface_net(c) for c in w.addresses}
                carried = {a for p in w.peers if final or self.declared(p.stage) for a in p.allowed_ips}
                nets |= carried
                if w.fwmark:
                    full |= {a for a in carried if addr.is_default(a)}
        # a full tunnel (wg-quick's fwmark and policy routing): everything of that family goes in
        return sorted(x for x in nets if not addr.is_default(x)) + sorted(full)

    # --- lookups ----------------------------------------------------------------------
    def route(self, node: str, dst: str, src: str | None = None, iif: str | None = None) -> RouteLookup:
        return self.routes.get((node, dst, src, iif)) or self.routes.get((node, dst, None, None)) \
            or RouteLookup(False, error="not looked up")

    def f(self, node: str) -> NodeFacts:
        return self.facts.get(node) or NodeFacts(node, readable=False)

    # --- WireGuard, as the nodes have it ----------------------------------------------
    def wg_iface(self, node: str, dst: str | None = None) -> str | None:
        """The node's WireGuard interface (the one whose peers carry ``dst`` when several)."""
        wgs = self.f(node).wg
        if dst and len(wgs) > 1:
            hit = longest(dst, [(a, w) for w in wgs for p in w.peers for a in p.allowed_ips], key=lambda x: x[0])
            if hit:
                return hit[1].name
        return wgs[0].name if wgs else None

    def is_wg(self, node: str, iface: str | None) -> bool:
        return bool(iface) and iface in self.f(node).wg_names

    def model_wg(self, node: str) -> list[str]:
        n = self.lab.nodes.get(node)
        return list(n.wireguard) if n else []

    def key_owner(self, key: str) -> str | None:
        """The node whose WireGuard interface has this public key (as read now, else the lab's)."""
        for name, f in self.facts.items():
            if any(w.public_key == key for w in f.wg):
                return name
        return next((n for n, k in self.keys.items() if k == key), None)

    def key_of(self, node: str) -> str | None:
        f = self.facts.get(node)
        if f and f.wg:
            return f.wg[0].public_key
        return self.keys.get(node)

    def peers(self, node: str):
        return [p for w in self.f(node).wg for p in w.peers]

    def model_peer(self, node: str, peer: str):
        """The lab file's final declaration of ``peer`` on ``node`` (later stages override)."""
        found = None
        n = self.lab.nodes.get(node)
        for w in (n.wireguard.values() if n else ()):
            for p in w.peers:
                if p.peer == peer:
                    found = p if found is None else replace(
                        p, endpoint=p.endpoint or found.endpoint,
                        keepalive=p.keepalive if p.keepalive is not None else found.keepalive)
        return found

    def model_endpoint(self, node: str, peer: str) -> str | None:
        mp = self.model_peer(node, peer)
        return endpoint_of(self.lab, mp.endpoint) if mp and mp.endpoint else None

    def peer_node_for(self, node: str, dst: str, peer=None) -> str | None:
        """Which node should stand behind the peer that carries ``dst`` on ``node``: the lab
        file's peer for that address, else the node whose addresses lie in the peer's allowed-ips."""
        n = self.lab.nodes.get(node)
        for w in (n.wireguard.values() if n else ()):
            for mp in w.peers:
                if in_nets(dst, mp.allowed_ips) and mp.peer != node:
                    return mp.peer
        if peer is not None:
            for other, f in self.facts.items():
                if other != node and any(in_nets(bare(a), peer.allowed_ips)
                                         for l in f.links.values() for a in l.addresses):
                    return other
        return None

    # --- addresses and networks -------------------------------------------------------
    def owner(self, ip: str) -> str | None:
        """The node that holds ``ip`` now (its links), else the one the lab file gives it to."""
        for name, f in self.facts.items():
            if any(addr.same_address(a, ip) for l in f.links.values() for a in l.addresses):
                return name
        o = self.lab.address_owner(ip)
        return o[0] if o else None

    def on_link(self, node: str, ip: str) -> bool:
        """Is ``ip`` on one of the networks the node is attached to now (a link that is up)?"""
        return any(l.up and in_nets(ip, l.addresses) for l in self.f(node).links.values())

    def vpn_nets(self) -> list[str]:
        nets = {addr.iface_net(a) for name, f in self.facts.items()
                for w in f.wg for a in (f.link(w.name).addresses if f.link(w.name) else [])}
        nets |= {addr.iface_net(c) for n in self.lab.nodes.values() for w in n.wireguard.values()
                 for c in w.addresses}
        return sorted(nets)

    def tunnel_nets(self) -> list[str]:
        """Networks some WireGuard peer carries (not a default route), now or in the lab file."""
        nets = {net for n in self.lab.nodes.values() for w in n.wireguard.values() for p in w.peers
                for net in p.allowed_ips}
        nets |= {net for f in self.facts.values() for w in f.wg for p in w.peers for net in p.allowed_ips}
        return sorted(n for n in nets if not addr.is_default(n))

    def behind_tunnel(self, ip: str) -> bool:
        """Should ``ip`` be reached through WireGuard (a VPN address, or a network a peer carries)?"""
        return in_nets(ip, self.vpn_nets()) or in_nets(ip, self.tunnel_nets())

    def covering_net(self, ip: str) -> str:
        """The network for ``ip`` as a fix should name it: the narrowest allowed-ips network that
        contains it (not a default route), else the LAN it lives on, else the host address."""
        best = longest(ip, self.tunnel_nets())
        if best is None:
            lans = [addr.iface_net(a) for f in self.facts.values() for l in f.links.values() for a in l.addresses]
            # the last of the equally narrow ones, as the kernel's tables list them
            hits = [n for n in lans if in_nets(ip, [n]) and not addr.is_default(n)]
            if hits:
                best = max(reversed(hits), key=addr.prefixlen)
        return best if best else addr.host_net(ip)

    def untranslated_dst(self, h: Hop) -> str:
        """A reply addressed to a node that masqueraded the request is really for the request's
        original source: connection tracking puts that address back before forwarding."""
        if h.role != "reply":
            return h.dst
        reqs = [r for r in self.res.hops if r.role == "request" and r.layer == "inner" and r.node == h.node]
        ins = [r for r in reqs if r.dir == "in"]
        outs = [r for r in reqs if r.dir == "out"]
        if ins and outs and outs[-1].src == h.dst and ins[0].src != outs[-1].src:
            return ins[0].src
        return h.dst

    def carried_by(self, h: Hop) -> Hop:
        return self.res.hops[h.carries] if h.carries is not None else h

    def handshake(self, p) -> dict:
        """When a peer's latest handshake was, as evidence parameters: ``age`` a word (never, N s
        ago, unknown) and ``secs`` the seconds it counts."""
        if not p.latest_handshake:
            return {"age": ("@", "word.hs-never"), "secs": -1}
        if not self.now:
            return {"age": ("@", "word.hs-unknown"), "secs": -1}
        return {"age": ("@", "word.hs-ago"), "secs": int(self.now - p.latest_handshake)}
