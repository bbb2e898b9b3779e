"""Checks that need the whole lab: references between nodes and interfaces, and what cannot work
(a cable from a node to itself, a node that is its own WireGuard peer, one address on two nodes)."""
from __future__ import annotations

from ..addr import family, host_of, port_of
from .fields import Errors
from .lab import Link, Node


def cross_check(errs: Errors, nodes: dict[str, Node], links: list[Link],
                route_index: dict[str, list[int]], link_index: list[int]) -> None:
    ends: dict[str, set[str]] = {n: set() for n in nodes}
    for i, ln in zip(link_index, links):     # i: the link's index in the file
        if ln.a.node == ln.b.node:
            errs.add(f"links[{i}]", f"both ends are on node {ln.a.node!r}: a cable joins two nodes")
            continue
        for e in (ln.a, ln.b):
            if e.node in ends:
                if e.iface in ends[e.node]:
                    errs.add(f"links[{i}]", f"interface {e.node}:{e.iface} is used by two links")
                ends[e.node].add(e.iface)
    for n in nodes.values():
        known = ends[n.name] | set(n.bridges) | set(n.wireguard)
        for ifname in n.addresses:
            if ifname not in known:
                errs.add(f"nodes.{n.name}.addresses.{ifname}",
                         "no such interface on this node (not in any link, bridge or wireguard)")
        for i, r in zip(route_index.get(n.name, []), n.routes):
            if r.dev and r.dev not in known:
                errs.add(f"nodes.{n.name}.routes[{i}].dev", f"no interface {r.dev!r} on node {n.name!r}")
        for wname, w in n.wireguard.items():
            for i, p in enumerate(w.peers):
                pk = f"nodes.{n.name}.wireguard.{wname}.peers[{i}]"
                if p.peer == n.name:
                    errs.add(f"{pk}.peer", f"node {n.name!r} cannot be its own peer")
                elif p.peer not in nodes:
                    errs.add(f"{pk}.peer", f"unknown node {p.peer!r}")
                elif not nodes[p.peer].wireguard:
                    errs.add(f"{pk}.peer", f"node {p.peer!r} has no wireguard interface")
                if p.endpoint:
                    _endpoint(errs, f"{pk}.endpoint", p.endpoint, nodes)
    _unique_addresses(errs, nodes)


def _endpoint(errs: Errors, key: str, endpoint: str, nodes: dict[str, Node]) -> None:
    node, _, rest = endpoint.partition(":")
    if node in nodes:
        if nodes[node].address_of(rest) is None:
            errs.add(key, f"node {node!r} has no address on {rest!r}")
        return
    port = port_of(endpoint)
    if family(host_of(endpoint)) is None or port is None or not 0 < port < 65536 or \
            (family(host_of(endpoint)) == 6 and not endpoint.startswith("[")):
        errs.add(key, f"{endpoint!r} is neither \"node:iface\" nor \"ip:port\" (\"[ipv6]:port\")")


def _unique_addresses(errs: Errors, nodes: dict[str, Node]) -> None:
    """wgtrace tells nodes apart by their addresses: one address, one place in the lab."""
    import ipaddress
    seen: dict = {}
    for n in nodes.values():
        items = [(f"nodes.{n.name}.addresses.{i}", c) for i, cs in n.addresses.items() for c in cs]
        items += [(f"nodes.{n.name}.wireguard.{w}.address", c) for w, x in n.wireguard.items() for c in x.addresses]
        for key, cidr in items:
            ip = ipaddress.ip_interface(cidr).ip        # fd00::1 and fd00:0::1 are one address
            if ip in seen:
                errs.add(key, f"address {ip} is also at {seen[ip]}: every address in a lab is unique")
            else:
                seen[ip] = key
