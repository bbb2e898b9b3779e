"""The pairs an imported lab must connect, where the files allow it.

Through the tunnel: a machine to each peer's tunnel address, in each family both have, when its
routes send that address into the interface, WireGuard gives it to that peer (the most specific
AllowedIPs of all its peers), the peer accepts the source, and a handshake can start: this side
has an endpoint, or the other side has one and a PersistentKeepalive (a client that never speaks
first cannot be reached: nobody knows where it is until it does).
To the internet: every client reaches ``web`` in every family it has, through its tunnel
(the server then needs a public address and NAT of that family) or around it.
"""
from __future__ import annotations

import ipaddress

from .tunnel import has_nat, public_address
from .words import Said, note


def _best_peer(m, addr):
    """The peer WireGuard on ``m`` sends ``addr`` to, if its routes send it into the interface."""
    table = m.f.interface.table or "auto"
    best, plen = None, -1
    for p, o, nets in m.routed:
        for net in nets:
            if net.version == addr.version and net.prefixlen > plen and addr in net:
                best, plen = (p, o), net.prefixlen
    if best is None:
        return None
    routed = table in ("auto", "main") or any(addr in i.network for i in m.family_addresses(addr.version))
    return best if routed else None


def _accepts(peer, src) -> bool:
    return peer is not None and any(src in ipaddress.ip_network(n) for n, _ in peer.allowed_ips
                                    if ipaddress.ip_network(n).version == src.version)


def checks(members, sites, u, nodes: dict, v6: bool, notes: list[Said]) -> list[dict]:
    site = {s.node: s for s in sites}
    fams = (4, 6) if v6 else (4,)
    out: list[dict] = []

    def add(c: dict) -> None:
        if c not in out:
            out.append(c)

    for m in members:
        for p, o in m.peers:
            back = o.peer_for(m) if o else None
            # m can start the handshake, or the other side does by itself (an endpoint and keepalive)
            if back is None or not (p.endpoint or (back.endpoint and back.keepalive)):
                continue
            for fam in fams:
                src, dst = m.family_addresses(fam), o.family_addresses(fam)
                if src and dst and _best_peer(m, dst[0].ip) == (p, o) and _accepts(back, src[0].ip):
                    add({"src": m.node, "dst": str(dst[0].ip)})
    for m in members:
        if site[m.node].public:
            continue
        for fam in fams:
            addr = ipaddress.ip_address(u.web_addresses[fam])
            via = _best_peer(m, addr)
            extra = {"family": fam} if v6 else {}
            if via is None:
                if fam in site[m.node].families:
                    add({"src": m.node, "dst": u.web, **extra})
                continue
            p, o = via
            src = m.family_addresses(fam)
            if not src:
                notes.append(note("no-source-address", node=m.node, family=fam, network=_net_of(p, addr)))
                continue
            back = o.peer_for(m) if o else None
            rules = nodes.get(o.node, {}).get("iptables" if fam == 4 else "ip6tables", []) if o else []
            if back and _accepts(back, src[0].ip) and site[o.node].public and public_address(u, o, fam) \
                    and has_nat(rules):
                add({"src": m.node, "dst": u.web, **extra})
            elif o is not None:
                notes.append(note("no-internet-check", node=m.node, family=fam, via=o.node))
    return out


def _net_of(p, addr) -> str:
    return next(n for n, _ in p.allowed_ips if addr in ipaddress.ip_network(n))
