"""The path wgtrace logs in over is not the path it probes: which interfaces are management.

A host's ``$SSH_CONNECTION`` names the address wgtrace is logged into. The interface holding it
is management by default (a network operators reach their machines through, beside the one
traffic takes), and is left out of the picture, the capture and the lab file, unless it also
carries the probe's way:

- the host routes through it (its default route, a gateway on it: a VPS reached on its public
  address, a LAN host reached on its LAN address);
- another host routes through one of its addresses (a router reached on its LAN side);
- a WireGuard peer of any host is sent to one of its addresses (a server's public endpoint);
- it is a WireGuard interface, a bridge or a bridge's port (the operator came in through the
  tunnel, or through a LAN that the host switches).

Pure logic over the hosts' snapshots (nodes/sshstate.HostState); unit-tested.
"""
from __future__ import annotations

from .. import addr
from ..nodes.sshstate import HostState


def login_iface(st: HostState) -> str | None:
    """The interface holding the address this host is logged into (None: not over SSH, or unknown)."""
    if not st.ssh_server:
        return None
    for name, link in st.links.items():
        if any(addr.same_address(addr.bare(a), st.ssh_server) for a in link.addresses):
            return name
    return None


def _elsewhere(states: dict[str, HostState]) -> tuple[dict[str, set[str]], set[str]]:
    """Per host, the addresses other hosts route through; every address a WireGuard peer is sent to."""
    gateways: dict[str, set[str]] = {}
    endpoints: set[str] = set()
    for host, st in states.items():
        for r in st.routes:
            if r.via:
                gateways.setdefault(host, set()).add(addr.normal(r.via))
        for w in st.wg:
            for p in w.peers:
                if p.endpoint:
                    endpoints.add(addr.normal(addr.host_of(p.endpoint)))
    return gateways, endpoints


def _carries(host: str, iface: str, st: HostState, gateways: dict[str, set[str]], endpoints: set[str]) -> bool:
    link = st.links[iface]
    if iface == "lo" or link.kind in ("wireguard", "bridge") or link.master or iface in st.wg_ifaces:
        return True
    mine = {addr.normal(addr.bare(a)) for a in link.addresses}
    for r in st.routes:
        if r.table in (253, 255) or r.proto == "kernel":
            continue
        if r.dev == iface or (r.via and addr.in_nets(r.via, link.addresses)):
            return True
    if any(mine & via for other, via in gateways.items() if other != host):
        return True
    return bool(mine & endpoints)


def management(states: dict[str, HostState]) -> dict[str, str]:
    """host -> its management interface (hosts whose login interface carries the path have none)."""
    gateways, endpoints = _elsewhere(states)
    out = {}
    for host, st in states.items():
        iface = login_iface(st)
        if iface and not _carries(host, iface, st, gateways, endpoints):
            out[host] = iface
    return out


def logins(states: dict[str, HostState]) -> dict[str, str]:
    """host -> the address it is logged into (a name never resolves to it when the host has another)."""
    return {h: st.ssh_server for h, st in states.items() if st.ssh_server}
