"""A leak: a probe from a full-tunnel client that got its answer without crossing the tunnel.

A full tunnel (a WireGuard peer whose allowed-ips hold a whole family, ``0.0.0.0/0`` or
``::/0``) is meant to carry everything the client sends. When the request left the client by
another interface, to a destination not on one of the client's own networks, the probe is
reachable and the traffic went around the tunnel: the classic case is IPv6 next to a tunnel
that covers only ``0.0.0.0/0``. It is a finding of a reachable verdict, never a stop.
"""
from __future__ import annotations

from ..addr import in_nets, is_default
from .path import TraceResult


def leak_of(res: TraceResult, wgs, links=None) -> tuple[str, str, str] | None:
    """(the interface the request left by, the full tunnel's interface, the families it covers as
    its default networks say) when ``res`` went around the source's full tunnel, else None.
    ``wgs``: the source's WireGuard interfaces (nodes' ``wg()``); ``links``: its links, to tell a
    destination on its own network (reached directly by design) from a leak."""
    if not res.reachable:
        return None
    full = [(w.name, sorted({a for p in w.peers for a in p.allowed_ips if is_default(a)})) for w in wgs]
    full = [(name, nets) for name, nets in full if nets]
    if not full:
        return None
    names = {w.name for w in wgs}
    first = next((h for h in res.hops if h.node == res.src and h.role == "request" and h.layer == "inner"
                  and h.dir == "out"), None)
    if first is None or first.iface in names:
        return None
    own = [a for link in (links or {}).values() for a in link.addresses]
    if in_nets(res.probe.get("dst_ip") or "", own):
        return None
    name, nets = full[0]
    return first.iface, name, ",".join(nets)
