"""From real hosts' state to a lab: nodes, cables, bridges, the unknown middle, as lab-file data.

Cables are inferred from shared subnets of either family (an interface with an IPv4 and an IPv6
subnet makes one cable): two hosts on one subnet are joined by a cable; three or more share a bridge (a host's own bridge when one of them has it, else a switch of their own).
A gateway that is no host's address, or a peer reached at an address that is no host's, means
something in the middle (the internet, a NAT router): it becomes one node of its own that holds
those gateways, forwards between them and masquerades where NAT was seen. The result is the
data of a lab file: ``model.parse.parse_lab`` turns it into the model trace and diagnose read,
and ``wgtrace discover`` writes it (model/tomlout.py) so ``wgtrace lab up`` rebuilds the network
with fresh keys. The hosts' keys never appear: peers are named by the host that has the key.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .. import addr

from ..nodes.sshstate import HostState
from ..model import fields as F
from . import nodedata
from .nodedata import WG_STAGE, Notes


OUT_OF_VIEW = "out-of-view"     # the middle of a network seen only in part: routers, NAT, the internet


@dataclass
class Member:
    host: str                 # a host, or the middle / a switch node
    iface: str
    ip: str
    kind: str = ""
    mac: str = ""


@dataclass
class Plan:
    """The lab being assembled: per node, its addresses and bridges; the cables."""
    addresses: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    bridges: dict[str, list[str]] = field(default_factory=dict)
    links: list[dict] = field(default_factory=list)
    used: dict[str, set[str]] = field(default_factory=dict)     # node -> interface names taken

    def take(self, node: str, want: str) -> str:
        """An interface name on ``node`` that is free and valid, as close to ``want`` as can be."""
        used = self.used.setdefault(node, set())
        base = "".join(c for c in want if c.isalnum() or c in "_.-")[:15] or "if"
        if not base[0].isalpha():
            base = "i" + base[:14]
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base[:15 - len(str(n))]}{n}"
        used.add(name)
        return name


def _ifaces(st: HostState, ignore: set[str]) -> dict[str, list[str]]:
    return {n: l.addresses for n, l in st.links.items()
            if n != "lo" and n not in ignore and F.IFACE_RE.match(n)}


def _free_name(want: str, taken) -> str:
    name, n = want, 1
    while name in taken:
        n += 1
        name = f"{want}{n}"
    return name


def discover(name: str, states: dict[str, HostState], ignore: dict[str, set[str]],
             description: str = "", middle_name: str = "internet") -> tuple[dict, Notes]:
    """Lab-file data for the hosts (name -> state of every host that could be read), and notes;
    ``middle_name``: what to call the unknown middle (a lab file's ``internet``; for a network in
    view only, what it is: out of view)."""
    notes = Notes()
    plan = Plan()
    wg_names = {h: set(st.wg_ifaces) | {n for n, l in st.links.items() if l.kind == "wireguard"}
                for h, st in states.items()}
    owner_of: dict[str, tuple[str, str]] = {}      # ip -> (host, iface): the first one keeps it
    wg_addr: dict[str, dict[str, list[str]]] = {h: {} for h in states}
    plain: dict[str, dict[str, list[str]]] = {h: {} for h in states}     # host -> iface -> cidrs
    for h, st in states.items():
        plan.used[h] = set(st.links)
        for iface, addrs in _ifaces(st, ignore.get(h, set())).items():
            kept: list[str] = []
            for cidr in addrs:
                ip = addr.bare(cidr)
                if ip in owner_of:
                    notes.add(h, f"{iface} {cidr}: the address is also {owner_of[ip][0]}'s; left out")
                elif not any(addr.family(k) == addr.family(cidr) for k in kept):
                    kept.append(cidr)
                    owner_of[ip] = (h, iface)
                else:
                    notes.add(h, f"{iface} {cidr}: a second IPv{addr.family(cidr)} address on {iface} "
                                 f"(wgtrace keeps one per family); left out")
            if kept:
                (wg_addr if iface in wg_names[h] else plain)[h][iface] = kept
    _tunnel_addresses(states, wg_names, wg_addr, owner_of, notes)
    # subnets and who is on them
    nets: dict = {}                                   # ip_network -> members
    for h, ifs in plain.items():
        for iface, cidrs in ifs.items():
            for cidr in cidrs:
                i = ipaddress.ip_interface(cidr)
                nets.setdefault(i.network, []).append(Member(h, iface, str(i.ip), states[h].links[iface].kind,
                                                             states[h].macs.get(iface, "")))
    # gateways that are nobody's: the middle holds them
    gw_of_net: dict = {}
    for h, st in states.items():
        for r in st.routes:
            if r.via and r.via not in owner_of and r.table not in (255, 253) and not addr.is_link_local(r.via):
                net = next((n for n in nets if addr.in_net(r.via, str(n)) and
                            any(m.host == h for m in nets[n])), None)
                if net is not None and net.prefixlen < 31:
                    gw_of_net.setdefault(net, r.via)
    middle = _free_name(middle_name, states) if gw_of_net else None
    if middle:
        plan.used[middle] = set()
        # one interface of the middle per link it shares with hosts (a subnet of each family on it)
        for net, gw in sorted(gw_of_net.items(), key=lambda x: (x[0].version, x[0])):
            nets[net].append(Member(middle, "", gw))
            owner_of[gw] = (middle, "")
    # cables and bridges
    switches = 0
    middle_ifaces: dict[frozenset, str] = {}     # the hosts' interfaces a middle interface faces -> its name
    for net, members in sorted(nets.items(), key=lambda x: (x[0].version, x[0])):
        hosts_on = {m.host for m in members}
        if len(members) < 2 or len(hosts_on) < len(members):
            for m in members:
                if m.kind == "bridge" and m.host in states:
                    _keep(plan, m, net)
                    plan.bridges.setdefault(m.host, []).append(m.iface)
                elif m.host in states:
                    why = "no other host on" if len(members) < 2 else "two interfaces of one host on"
                    notes.add(m.host, f"{m.iface} {m.ip}/{net.prefixlen}: {why} {net}; left out")
            continue
        facing = frozenset((m.host, m.iface) for m in members if m.host != middle)
        for m in members:
            if m.host == middle:
                m.iface = middle_ifaces.get(facing) or plan.take(middle, f"eth{len(plan.used[middle])}")
                middle_ifaces[facing] = m.iface
        holder = next((m for m in members if m.kind == "bridge" and m.host in states), None)
        if holder is None and middle in hosts_on and len(members) > 2:
            holder = next(m for m in members if m.host == middle)
            holder.iface = holder.iface.replace("eth", "br", 1)
            holder.kind = "bridge"
        if holder is not None:
            _bridge(plan, holder, [m for m in members if m is not holder], net, states)
        elif len(members) == 2:
            a, b = members
            _keep(plan, a, net)
            _keep(plan, b, net)
            _cable(plan, {"endpoints": [f"{a.host}:{a.iface}", f"{b.host}:{b.iface}"]})
        else:
            sw = next((l["endpoints"][0].split(":")[0] for l in plan.links if l.get("bridge") == "br0" and
                       l["endpoints"][1] in {f"{m.host}:{m.iface}" for m in members}), None)
            if sw is None:                       # the other family's subnet on these ports made one already
                switches += 1
                sw = _free_name(f"switch{switches}", set(states) | set(plan.used))
                plan.used[sw] = {"br0"}
                plan.bridges[sw] = ["br0"]
            for m in members:
                _keep(plan, m, net)
                if not any(l["endpoints"][1] == f"{m.host}:{m.iface}" for l in plan.links):
                    port = plan.take(sw, f"p-{m.host}")
                    plan.links.append({"endpoints": [f"{sw}:{port}", f"{m.host}:{m.iface}"], "bridge": "br0"})
    return _assemble(name, description, states, ignore, plan, middle, wg_addr, owner_of, nets, notes), notes


def _tunnel_addresses(states, wg_names, wg_addr, owner_of, notes: Notes) -> None:
    """A WireGuard interface without an address (removed by hand, or never set): its peers say
    which address it has in the tunnel, a /32 of their allowed-ips inside their own tunnel subnet."""
    for h, st in states.items():
        for w in st.wg:
            if w.name in wg_addr[h] or w.name not in wg_names[h]:
                continue
            for other, ost in states.items():
                for ow in ost.wg:
                    mine = wg_addr.get(other, {}).get(ow.name)
                    for p in (ow.peers if mine else ()):
                        if p.public_key != w.public_key or w.name in wg_addr[h]:
                            continue
                        for net in [ipaddress.ip_interface(c).network for c in mine]:
                            ips = [addr.bare(a) for a in p.allowed_ips if addr.prefixlen(a) == net.max_prefixlen
                                   and addr.in_net(addr.bare(a), str(net)) and addr.bare(a) not in owner_of]
                            if ips:
                                wg_addr[h].setdefault(w.name, []).append(f"{ips[0]}/{net.prefixlen}")
                                owner_of[ips[0]] = (h, w.name)
                                notes.add(h, f"{w.name} has no address; {other}'s peer for it says {ips[0]} "
                                             f"(its allowed-ips): taken as its address")


def _keep(plan: Plan, m: Member, net) -> None:
    have = plan.addresses.setdefault(m.host, {}).setdefault(m.iface, [])
    if f"{m.ip}/{net.prefixlen}" not in have:
        have.append(f"{m.ip}/{net.prefixlen}")


def _cable(plan: Plan, link: dict) -> None:
    """One cable per pair of interfaces, however many subnets they share; none for interfaces
    already cabled (an IPv6 subnet of two hosts whose IPv4 one is a bridge's: the same wire)."""
    ends = set(link["endpoints"])
    if not any(ends & set(l["endpoints"]) for l in plan.links):
        plan.links.append(link)


def _bridge(plan: Plan, holder: Member, others: list[Member], net, states: dict[str, HostState]) -> None:
    """Cables from each other member to a port of the holder's bridge: the host's real port
    where its forwarding table knows the member's MAC, else one by name, else a new one."""
    _keep(plan, holder, net)
    h, br = holder.host, holder.iface
    if br not in plan.bridges.setdefault(h, []):
        plan.bridges[h].append(br)
    ports: list[str] = []
    by_mac: dict[str, str] = {}
    if h in states:
        st = states[h]
        ports = [n for n, l in st.links.items() if l.master == br]
        by_mac = {e.get("mac", ""): e.get("ifname", "") for e in st.fdb
                  if e.get("master") == br and e.get("ifname") in ports}
    free = list(ports)
    chosen: dict[int, str] = {}
    for i, m in enumerate(others):
        p = by_mac.get(m.mac)
        if p in free:
            chosen[i] = p
            free.remove(p)
    for i, m in enumerate(others):
        if i not in chosen:
            p = next((p for p in free if m.host in p), None)
            if p:
                chosen[i] = p
                free.remove(p)
    for i, m in enumerate(others):
        if i not in chosen and free:
            chosen[i] = free.pop(0)
        port = chosen.get(i) or plan.take(h, f"{br}-{m.host}")
        _keep(plan, m, net)
        if not any(l["endpoints"][1] == f"{m.host}:{m.iface}" for l in plan.links):
            plan.links.append({"endpoints": [f"{h}:{port}", f"{m.host}:{m.iface}"], "bridge": br})


def _nets(addrs: dict[str, list[str]]) -> dict:
    """ip_network -> interface, for one node's planned addresses."""
    return {ipaddress.ip_interface(c).network: i for i, cs in addrs.items() for c in cs}


def _middle_data(middle: str, states, plan: Plan, nets, owner_of, notes: Notes) -> dict:
    """The unknown middle: forwards between the gateways it holds, routes to the subnets behind
    hosts that forward, and masquerades where a peer was seen behind NAT."""
    mine = _nets(plan.addresses.get(middle, {}))
    routes, rules = [], []
    linked = {net for n, a in plan.addresses.items() for net in _nets(a)}
    for net in sorted(linked - set(mine), key=lambda n: (n.version, n)):
        fwd = "net.ipv6.conf.all.forwarding" if net.version == 6 else "net.ipv4.ip_forward"
        for h, st in states.items():
            if st.sysctl.get(fwd) != "1":
                continue
            hs = _nets(plan.addresses.get(h, {}))
            via = next((addr.bare(c) for cs in plan.addresses.get(h, {}).values() for c in cs
                        if ipaddress.ip_interface(c).network in mine and addr.family(c) == net.version), None)
            if net in hs and via:
                routes.append({"dst": str(net), "via": via})
                break
    # NAT: a peer reached at an address that is nobody's, from a host behind the middle
    for h, st in states.items():
        for w in st.wg:
            for p in w.peers:
                ip = addr.host_of(p.endpoint or "")
                if not p.endpoint or ip in owner_of:
                    continue
                # the observer's side of the middle, and the subnets of the host that has the peer's key
                out_if = _middle_iface_towards(h, plan, mine)
                peer_host = next((x for x, s in states.items() if any(v.public_key == p.public_key for v in s.wg)), None)
                if not out_if or not peer_host:
                    continue
                for net, _ in _nets(plan.addresses.get(peer_host, {})).items():
                    if net in mine and mine[net] != out_if and net.version == 4:
                        rule = f"-t nat -A POSTROUTING -s {net} -o {out_if} -j MASQUERADE"
                        if {"rule": rule} not in rules:
                            rules.append({"rule": rule})
    sysctl = [{"key": "net.ipv4.ip_forward", "value": "1"}]
    if any(n.version == 6 for n in mine):
        sysctl.append({"key": "net.ipv6.conf.all.forwarding", "value": "1"})
    return {"description": "what lies between the hosts (gateways and NAT no host owns), as discovered",
            "addresses": _flat(plan.addresses.get(middle, {})), "bridges": plan.bridges.get(middle, []),
            "routes": routes, "sysctl": sysctl, "iptables": rules}


def _flat(addrs: dict[str, list[str]]) -> dict:
    """As a lab file writes it: one address as a string, several as a list."""
    return {i: cs[0] if len(cs) == 1 else cs for i, cs in addrs.items()}


def _middle_iface_towards(host: str, plan: Plan, mine: dict) -> str | None:
    for net in _nets(plan.addresses.get(host, {})):
        if net in mine:
            return mine[net]
    return None


def _assemble(name, description, states, ignore, plan: Plan, middle, wg_addr, owner_of, nets, notes) -> dict:
    key_owner = {w.public_key: h for h, st in states.items() for w in st.wg}
    ports = {h: next((w.listen_port for w in st.wg if w.listen_port), 0) for h, st in states.items()}
    wg_hosts = {h for h in states if wg_addr[h]}
    nodes: dict[str, dict] = {}
    uses_stage = False
    for h, st in states.items():
        kept = set(plan.addresses.get(h, {})) | set(plan.bridges.get(h, []))
        kept |= {e.split(":", 1)[1] for l in plan.links for e in l["endpoints"] if e.split(":", 1)[0] == h}
        wgs = nodedata.wireguard(h, st, wg_addr[h], key_owner, owner_of, ports, wg_hosts, notes)
        policies, rules = nodedata.firewall(h, st, notes)
        policies6, rules6 = nodedata.firewall(h, st, notes, 6)
        sysctl = nodedata.sysctls(h, st, kept, set(wgs))
        uses_stage |= any("stage" in s for s in sysctl)
        d: dict = {"description": f"host {h}, as discovered"}
        if plan.addresses.get(h):
            d["addresses"] = _flat(plan.addresses[h])
        if plan.bridges.get(h):
            d["bridges"] = plan.bridges[h]
        d["routes"] = nodedata.routes(h, st, kept | set(wgs), notes)
        d["rules"] = nodedata.ip_rules(h, st, notes)
        d["sysctl"] = sysctl
        if policies:
            d["policies"] = policies
        if policies6:
            d["policies6"] = policies6
        d["iptables"] = rules
        d["ip6tables"] = rules6
        if wgs:
            d["wireguard"] = wgs
        nodes[h] = {k: v for k, v in d.items() if v not in ([], {})}
    if middle:
        nodes[middle] = {k: v for k, v in _middle_data(middle, states, plan, nets, owner_of, notes).items()
                         if v not in ([], {})}
    for sw, brs in plan.bridges.items():
        if sw not in nodes:
            nodes[sw] = {"description": "a switch joining hosts that share a subnet", "bridges": brs}
    data: dict = {"name": name, "description": description or f"discovered from {len(states)} host(s)"}
    if uses_stage:
        data["stages"] = [{"name": WG_STAGE, "title": "Settings of WireGuard interfaces (they exist from stage 0)"}]
    data["nodes"] = nodes
    data["links"] = plan.links
    return data
