"""Which nodes to watch: the probe's expected path, widened only where the packet leaves it.

A capture costs every node it runs on (a socket opened in its namespace; for a diagnosis, its
firewall and WireGuard state read too), so a big lab is not watched whole. The path is predicted
the way the kernel will send the packet: each node's routing table (the main one, read from
/proc: no netlink needed; a full tunnel's policy routing from its fwmark), WireGuard peers for tunnel interfaces (the peer whose allowed-ips
hold the address; the datagram then crosses the underlay to its endpoint), addresses for the
next hop. The reply path is predicted back to the source. After the probe, ``escaped`` names
the nodes where the packet went that nobody watched; the caller widens and probes again.
Small labs are watched whole: below SMALL nodes the prediction costs more than it saves.
"""
from __future__ import annotations

from ..addr import bare, host_of, is_default, longest
from ..network import Network
from .path import TraceResult

SMALL = 8


def _owners(net: Network) -> dict[str, str]:
    return {bare(c): n.name for n in net.model.nodes.values() for _, c in n.all_cidrs()}


class _Walker:
    def __init__(self, net: Network) -> None:
        self.net = net
        self.owners = _owners(net)
        self.tables: dict[tuple, list] = {}
        self.wgs: dict[str, list] = {}
        self.keys = {v: k for k, v in net.keys.items()}
        self.seen: set[str] = set()

    def table(self, node: str, family: int) -> list:
        if (node, family) not in self.tables:
            self.tables[(node, family)] = self.net.nodes[node].route_table(family)
        return self.tables[(node, family)]

    def wg(self, node: str) -> list:
        if node not in self.wgs:
            self.wgs[node] = self.net.nodes[node].wg()
        return self.wgs[node]

    def full_tunnel(self, node: str, dst: str):
        """A full tunnel that takes ``dst`` (wg-quick's fwmark and policy routing: the main table
        does not show it): the interface, when its peers' widest match for ``dst`` is a default."""
        for w in self.wg(node):
            if w.fwmark:
                hit = longest(dst, [a for p in w.peers for a in p.allowed_ips])
                if hit is not None and is_default(hit):
                    return w
        return None

    def walk(self, node: str, dst: str, budget: int = 64, marked: bool = False) -> None:
        """Follow ``dst`` from ``node`` hop by hop, adding every node it passes to ``seen``;
        ``marked``: WireGuard's own datagrams, which a full tunnel's policy routing lets by."""
        from ..addr import family
        fam = family(dst) or 4
        self.seen.add(node)
        visited: set[str] = set()
        first = True
        while budget > 0 and node not in visited:
            budget -= 1
            visited.add(node)
            if self.owners.get(dst) == node:
                return
            w = self.full_tunnel(node, dst) if not (marked and first) else None
            first = False
            hit = (None, None, w.name) if w is not None else longest(dst, self.table(node, fam), key=lambda row: row[0])
            if hit is None:
                return
            _, gw, dev = hit
            w = w or next((w for w in self.wg(node) if w.name == dev), None)
            if w is not None:
                peer = longest(dst, [(a, p) for p in w.peers for a in p.allowed_ips], key=lambda x: x[0])
                if peer is None:
                    return
                peer = peer[1]
                if peer.endpoint:
                    self.walk(node, host_of(peer.endpoint), budget, marked=True)
                nxt = self.keys.get(peer.public_key)
            else:
                nxt = self.owners.get(gw or dst)
            if nxt is None or nxt == node or nxt not in self.net.nodes:
                return
            node = nxt
            self.seen.add(node)


def predict(net: Network, src: str, dst_ip: str, src_ip: str | None) -> set[str]:
    """The nodes the request and its reply should pass (all of them in a small lab)."""
    if len(net.nodes) <= SMALL:
        return set(net.nodes)
    w = _Walker(net)
    try:
        w.walk(src, dst_ip)
        owner = w.owners.get(dst_ip)
        if owner and src_ip:
            w.walk(owner, src_ip)
    except (OSError, ValueError):
        return set(net.nodes)           # cannot predict: watch everything
    return w.seen


def neighbours(net: Network, node: str, iface: str | None) -> set[str]:
    """The nodes at the other end of ``node``'s ``iface`` (all ports, for a bridge)."""
    out: set[str] = set()
    bridge = {l.a.iface for l in net.model.links if l.a.node == node and l.bridge == iface}
    for l in net.model.links:
        for a, b in ((l.a, l.b), (l.b, l.a)):
            if a.node == node and (a.iface == iface or a.iface in bridge):
                out.add(b.node)
            if b.node == node and b.iface == iface and l.bridge:
                # a port of someone else's bridge: everybody on that bridge
                out |= {x.b.node for x in net.model.links if x.a.node == a.node and x.bridge == l.bridge}
                out.add(a.node)
    return out - {node}


def escaped(net: Network, res: TraceResult, watched: set[str]) -> set[str]:
    """Nodes the packet may have gone to that nobody watched: when it was last seen leaving a
    node, the unwatched nodes at the other end of that interface (a whole LAN, for a bridge)."""
    if watched >= set(net.nodes):
        return set()
    moving = [h for h in res.hops if h.role in ("request", "reply")]
    if not moving or moving[-1].dir != "out":
        return set()
    last = moving[-1]
    # (the model's part out of view, for hosts, is no node to watch)
    return (neighbours(net, last.node, last.iface) & set(net.nodes)) - watched
