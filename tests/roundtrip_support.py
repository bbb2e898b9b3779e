"""``lab export`` then ``lab import``: is the lab that comes back the one that went out, up to keys?

What a wg-quick file can carry is compared, node by node, for every node with WireGuard (the
import infers its own underlay: the internet, NAT routers and a web host, so the nodes without
WireGuard are not in the files): each interface's name, addresses, port, fwmark and MTU; its
peers (by node), their allowed IPs, keepalive and the node an endpoint dials; the routes into
the interface (the original's are all there, a gateway on them aside; wg-quick's own, one per AllowedIPs network, lead
nowhere WireGuard would not send the packet anyway); the policy rules; the sysctls and the
firewall rules (all of the original's, the import may add the NAT it infers).
"""
from __future__ import annotations

import ipaddress

from wgtrace.model.lab import Lab


def stage_order(lab: Lab) -> dict:
    return {None: 0, **{s.name: i for i, s in enumerate(lab.stages)}}


def applied(lab: Lab, stage, last: int) -> bool:
    return stage_order(lab)[stage] <= last


def peers_at(lab: Lab, w, last: int) -> dict:
    """peer node -> what it is after stage ``last``: a later declaration replaces its allowed IPs
    and keeps the endpoint and keepalive it does not give, as ``wg set`` does."""
    import dataclasses
    out = {}
    for p in w.peers:
        if applied(lab, p.stage, last):
            before = out.get(p.peer)
            out[p.peer] = p if before is None else dataclasses.replace(
                p, endpoint=p.endpoint or before.endpoint,
                keepalive=p.keepalive if p.keepalive is not None else before.keepalive)
    return out


def differences(original: Lab, back: Lab, last: int | None = None) -> list[str]:
    last = len(original.stages) - 1 if last is None else last
    out = []
    for name, n in original.nodes.items():
        if not n.wireguard:
            continue
        if name not in back.nodes:
            out.append(f"{name}: missing")
            continue
        b = back.nodes[name]
        if set(b.wireguard) != set(n.wireguard):
            out.append(f"{name}: interfaces {sorted(b.wireguard)} != {sorted(n.wireguard)}")
            continue
        for wname, w in n.wireguard.items():
            g = b.wireguard[wname]
            for field in ("addresses", "listen_port", "fwmark", "mtu"):
                if getattr(g, field) != getattr(w, field):
                    out.append(f"{name}.{wname}.{field}: {getattr(g, field)!r} != {getattr(w, field)!r}")
            want = {p: (x.allowed_ips, x.keepalive, _dials(original, x)) for p, x in peers_at(original, w, last).items()}
            got = {p: (x.allowed_ips, x.keepalive, _dials(back, x)) for p, x in peers_at(back, g, 99).items()}
            if got != want:
                out.append(f"{name}.{wname}.peers: {got} != {want}")
            nets = [ipaddress.ip_network(a) for x in peers_at(original, w, last).values() for a in x.allowed_ips]
            orig = {_route(r) for r in n.routes if r.dev == wname and applied(original, r.stage, last)}
            came = {_route(r) for r in b.routes if r.dev == wname}
            if orig - came:
                out.append(f"{name}: routes into {wname} lost: {sorted(orig - came)}")
            for r in came - orig:
                net = ipaddress.ip_network("0.0.0.0/0" if r[0] == "default" and r[2] == 4 else
                                           "::/0" if r[0] == "default" else r[0])
                if not any(net.version == x.version and net.subnet_of(x) for x in nets):
                    out.append(f"{name}: route {r} into {wname} leads where no peer's allowed IPs do")
        rules = lambda node, lab, all_: {(r.table, r.fwmark, r.invert, r.suppress_prefixlength, r.family)
                                         for r in node.rules if all_ or applied(lab, r.stage, last)}
        if rules(b, back, True) != rules(n, original, False):
            out.append(f"{name}: rules {rules(b, back, True)} != {rules(n, original, False)}")
        sysctls = {(s.key, s.value) for s in n.sysctl if applied(original, s.stage, last)}
        if sysctls - {(s.key, s.value) for s in b.sysctl}:
            out.append(f"{name}: sysctls lost: {sysctls - {(s.key, s.value) for s in b.sysctl}}")
        fw = [(r.family, r.rule) for r in n.iptables if applied(original, r.stage, last)]
        got_fw = [(r.family, r.rule) for r in b.iptables]
        if [r for r in fw if r not in got_fw] or [r for r in got_fw if r in fw] != fw:
            out.append(f"{name}: firewall rules {got_fw} do not hold {fw} in order")
    return out


def _route(r) -> tuple:
    """A route into a WireGuard interface: a gateway there changes nothing (no link layer)."""
    return (r.dst, r.table, r.family)


def _dials(lab: Lab, p) -> str | None:
    """The node an endpoint dials: its node name, or the node holding the address it names."""
    if not p.endpoint:
        return None
    node, _, _ = p.endpoint.partition(":")
    if node in lab.nodes:
        return node
    from wgtrace.addr import host_of
    owner = lab.address_owner(host_of(p.endpoint))
    return owner[0] if owner else p.endpoint
