"""Several wg-quick files -> one lab: which file is which node, who is whose peer, what lies between.

In order: match peers by public key (a file's own key is computed from its PrivateKey, which
is then forgotten), and say what does not fit (a key no file has, a peer only one side lists,
preshared keys that differ, AllowedIPs that leave out the other side's address, an endpoint on
a port nobody listens on); resolve endpoints (an address becomes the public address of the
node whose key the peer names; a name means that node too, and is never looked up); place the
machines (underlay.py); make each file a node (tunnel.py); the checks (checks.py).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property

from . import tunnel
from .hooks import HookReading
from .parse import Peer, WgQuickFile
from .underlay import Site, Taken, build
from .words import Said, finding, lab_text, note


@dataclass
class Member:
    node: str
    f: WgQuickFile
    hooks: HookReading
    peers: list[tuple[Peer, "Member | None"]] = field(default_factory=list)
    wan: str = "eth0"

    @cached_property
    def addresses(self) -> list[str]:
        """The interface's addresses: the file's, then those its hooks add."""
        own = [c for c, _ in self.f.interface.addresses]
        return own + [a.value for a in self.hooks.actions if a.kind == "address" and a.value not in own]

    @cached_property
    def _interfaces(self) -> list:
        return [ipaddress.ip_interface(c) for c in self.addresses]

    def family_addresses(self, fam: int) -> list:
        return [i for i in self._interfaces if i.version == fam]

    def peer_for(self, other: "Member") -> Peer | None:
        return self._by_member.get(id(other))

    @cached_property
    def _by_member(self) -> dict[int, Peer]:
        return {id(o): p for p, o in self.peers if o is not None}

    @cached_property
    def routed(self) -> list[tuple[Peer, "Member | None", list]]:
        """Each peer with its AllowedIPs as networks (parsed once: a hub has hundreds)."""
        return [(p, o, [ipaddress.ip_network(n) for n, _ in p.allowed_ips]) for p, o in self.peers]


@dataclass
class Inferred:
    lab: dict
    notes: list[Said]
    findings: list[Said]


def short_key(key: str) -> str:
    return key[:8] + "…"


def match(members: list[Member], findings: list[Said]) -> None:
    owner = {m.f.interface.public_key: m for m in members if m.f.interface.public_key}
    for m in members:
        if not m.f.interface.public_key:
            findings.append(finding("no-private-key", m.f.shown, node=m.node))
        for p in m.f.peers:
            other = owner.get(p.public_key)
            m.peers.append((p, other))
            if other is None:
                findings.append(finding("unknown-peer-named" if p.label else "unknown-peer", m.f.shown, p.key_line,
                                        node=m.node, label=p.label, key=short_key(p.public_key)))
    for m in members:
        for p, o in m.peers:
            if o is None:
                continue
            back = o.peer_for(m)
            if back is None:
                findings.append(finding("one-sided", m.f.shown, p.key_line, node=m.node, peer=o.node))
                continue
            if m.node < o.node and (p.psk or back.psk) and p.psk != back.psk:
                findings.append(finding("psk-one-side" if not (p.psk and back.psk) else "psk-differs",
                                        m.f.shown, p.key_line, node=m.node, peer=o.node))
            nets = [ipaddress.ip_network(n) for n, _ in p.allowed_ips]
            for fam in (4, 6):
                if not m.family_addresses(fam):
                    continue
                for i in o.family_addresses(fam):
                    if not any(i.ip in n for n in nets if n.version == fam):
                        findings.append(finding("source-not-allowed", m.f.shown, p.key_line, node=m.node,
                                                peer=o.node, address=str(i.ip)))
        _taken_twice(m, findings)


def _taken_twice(m: Member, findings: list[Said]) -> None:
    """An allowed IP belongs to one peer of an interface: a later peer that names it takes it."""
    holder: dict[str, str] = {}
    for p, o in m.peers:
        who = o.node if o else (p.label or short_key(p.public_key or ""))
        for net, line in p.allowed_ips:
            if net in holder and holder[net] != who:
                findings.append(finding("allowed-ips-taken", m.f.shown, line, node=m.node, network=net,
                                        first=holder[net], second=who))
            holder[net] = who


def endpoints(members: list[Member], findings: list[Said], notes: list[Said]) -> tuple[dict, dict]:
    """(node -> addresses endpoints dial it at, node -> names endpoints call it)."""
    claimed: dict[str, list[str]] = {m.node: [] for m in members}
    names: dict[str, list[str]] = {m.node: [] for m in members}
    tunnel = {i.ip for m in members for i in map(ipaddress.ip_interface, m.addresses)}
    holder: dict[str, str] = {}
    for m in members:
        for p, o in m.peers:
            if not p.endpoint or o is None:
                continue
            host, port = p.endpoint
            lp = o.f.interface.listen_port
            if lp is None:
                findings.append(finding("no-listen-port", m.f.shown, p.endpoint_line, node=m.node, peer=o.node,
                                        port=port))
            elif lp != port:
                findings.append(finding("endpoint-port", m.f.shown, p.endpoint_line, node=m.node, peer=o.node,
                                        port=port, listen=lp))
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                if host not in names[o.node]:
                    names[o.node].append(host)
                continue
            if ip in tunnel:
                findings.append(finding("endpoint-in-tunnel", m.f.shown, p.endpoint_line, node=m.node,
                                        peer=o.node, address=host))
            elif holder.setdefault(host, o.node) != o.node:
                findings.append(finding("endpoint-two-nodes", m.f.shown, p.endpoint_line, address=host,
                                        first=holder[host], second=o.node))
            elif host not in claimed[o.node]:
                claimed[o.node].append(host)
                notes.append(note("public-from-endpoint", node=o.node, address=host, by=m.node))
    return claimed, names


def _wan_name(m: Member) -> str:
    """The machine's interface to the world, as its hooks call it (``-o ens3 -j MASQUERADE``)."""
    from ..model.fields import IFACE_RE
    seen = []
    for a in m.hooks.actions:
        if a.kind in ("iptables", "ip6tables"):
            w = a.value.split()
            nat = "nat" in w and "POSTROUTING" in w
            for opt in ("-o", "-i"):
                if opt in w[:-1]:
                    dev = w[w.index(opt) + 1]
                    if dev != m.f.iface and IFACE_RE.match(dev) and "+" not in dev:
                        seen.append((0 if nat and opt == "-o" else 1, dev))
    return min(seen)[1] if seen else ("eth0" if m.f.iface != "eth0" else "eth1")


def infer(members: list[Member], lab_name: str) -> Inferred:
    notes: list[Said] = []
    findings: list[Said] = []
    match(members, findings)
    claimed, names = endpoints(members, findings, notes)
    v6 = any(ipaddress.ip_network(n).version == 6 for m in members for p in m.f.peers for n, _ in p.allowed_ips) \
        or any(m.family_addresses(6) for m in members) or any(":" in c for cs in claimed.values() for c in cs)
    dialled = {o.node for m in members for p, o in m.peers if p.endpoint and o}
    sites = []
    for m in members:
        m.wan = _wan_name(m)
        public = m.node in dialled or (m.f.interface.listen_port is not None and not any(p.endpoint for p in m.f.peers))
        fams = {4, 6} if public and v6 else {4}
        if not public:
            fams |= {ipaddress.ip_address(p.endpoint[0]).version for p, _ in m.peers
                     if p.endpoint and _is_ip(p.endpoint[0])}
        sites.append(Site(m.node, public, m.wan, claimed[m.node], fams))
    taken = Taken(_used_networks(members, claimed))
    u = build(sites, taken, v6, {m.node for m in members})
    notes += u.notes
    for m in members:
        for name in names[m.node]:
            addr = tunnel.public_address(u, m, None)
            notes.append(note("name-resolved", name=name, node=m.node, address=addr or "?"))
    nodes: dict[str, dict] = {}
    for m, s in zip(members, sites):
        nodes[m.node] = tunnel.node_data(m, s, u, members, v6, notes, findings)
    nodes.update(u.nodes)
    with_psk = [_base(m.f.shown) for m in members if any(p.psk for p in m.f.peers)]
    if with_psk:
        notes.append(note("psk", files=", ".join(with_psk)))
    from .checks import checks
    lab: dict = {"name": lab_name,
                 "description": lab_text("lab", count=len(members), files=", ".join(_base(m.f.shown) for m in members))}
    found = checks(members, sites, u, nodes, v6, notes)
    probe = next((c for c in found if c["dst"] in nodes), None)      # a probe names two nodes
    if probe:
        lab["probe"] = {"src": probe["src"], "dst": probe["dst"]}
    if found:
        lab["checks"] = found
    lab["nodes"] = {n: _shaped(d) for n, d in nodes.items()}
    lab["links"] = u.links
    return Inferred(lab, notes, findings)


NODE_ORDER = ("description", "addresses", "bridges", "routes", "rules", "sysctl", "policies", "policies6",
              "iptables", "ip6tables", "wireguard", "services")


def _shaped(d: dict) -> dict:
    """Keys in the order of docs/labfile.md; one address written as a string, several as a list."""
    out = {k: d[k] for k in NODE_ORDER if k in d and d[k] not in ([], {})}
    if "addresses" in out:
        out["addresses"] = {i: cs[0] if len(cs) == 1 else cs for i, cs in out["addresses"].items()}
    return out


def _base(shown: str) -> str:
    return shown.rsplit("/", 1)[-1]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _used_networks(members: list[Member], claimed: dict) -> list:
    nets = [ipaddress.ip_interface(c).network for m in members for c in m.addresses]
    nets += [ipaddress.ip_network(n) for m in members for p in m.f.peers for n, _ in p.allowed_ips]
    nets += [ipaddress.ip_network(c) for cs in claimed.values() for c in cs]
    nets += [ipaddress.ip_network(d) for m in members for d in m.f.interface.dns if _is_ip(d)]
    for m in members:
        for p in m.f.peers:
            if p.endpoint and _is_ip(p.endpoint[0]):
                nets.append(ipaddress.ip_network(p.endpoint[0]))
    return nets
