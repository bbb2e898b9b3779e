"""Does a stage's configuration hold in the real lab, however it was typed?

Each item the lab file assigns to a stage (sysctl, WireGuard interface or peer, route,
iptables rule) is checked against the node's state: ``sysctl`` values read from /proc,
``iptables -C`` for rules, routes and WireGuard read back from the kernel. So
``echo 1 > /proc/sys/net/ipv4/ip_forward`` passes a stage that shows ``sysctl -w``.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .model import Lab
from .node import NodeHandle
from .wgstate import read_wg


@dataclass
class Check:
    node: str
    what: str
    ok: bool


def stage_checks(lab: Lab, index: int, handles: dict[str, NodeHandle], keys: dict[str, str]) -> list[Check]:
    stage = lab.stages[index].name
    checks: list[Check] = []
    for node in lab.nodes.values():
        h = handles[node.name]
        for s in node.sysctl:
            if s.stage == stage:
                got = h.read_sysctl(s.key)
                checks.append(Check(node.name, f"{s.key} = {s.value}", got == s.value))
        wgs = None
        for w in node.wireguard.values():
            items = [w] if w.stage == stage else []
            peers = [p for p in w.peers if p.stage == stage]
            if not items and not peers:
                continue
            wgs = wgs if wgs is not None else {i.name: i for i in read_wg(h)}
            if items:
                cur = wgs.get(w.name)
                with h.iproute() as ipr:
                    idx = ipr.link_lookup(ifname=w.name)
                    addrs = [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=idx[0])] if idx else []
                    up = bool(idx) and bool(ipr.get_links(idx[0])[0]["flags"] & 1)
                checks.append(Check(node.name, f"{w.name} exists and is up", bool(cur) and up))
                checks.append(Check(node.name, f"{w.name} has address {w.address}", w.address in addrs))
                checks.append(Check(node.name, f"{w.name} uses the key in ./private",
                                    bool(cur) and cur.public_key == keys.get(node.name)))
            for p in peers:
                cur = wgs.get(w.name)
                peer = next((x for x in (cur.peers if cur else []) if x.public_key == keys.get(p.peer)), None)
                nets = {str(ipaddress.IPv4Network(a)) for a in (peer.allowed_ips if peer else [])}
                checks.append(Check(node.name, f"peer {p.peer} with allowed-ips {','.join(p.allowed_ips)}",
                                    peer is not None and set(p.allowed_ips) <= nets))
                if p.endpoint:
                    checks.append(Check(node.name, f"peer {p.peer} has an endpoint", bool(peer and peer.endpoint)))
        for r in node.routes:
            if r.stage == stage:
                checks.append(Check(node.name, f"route {r.dst}" + (f" via {r.via}" if r.via else "")
                                    + (f" dev {r.dev}" if r.dev else ""), _has_route(h, r)))
        for rule in node.iptables:
            if rule.stage == stage:
                spec = rule.rule.replace("-A ", "-C ", 1).replace("-I ", "-C ", 1)
                res = h.run(["sh", "-c", f"iptables {spec}"])
                checks.append(Check(node.name, f"iptables {rule.rule}", res.returncode == 0))
    return checks


def _has_route(h: NodeHandle, r) -> bool:
    with h.iproute() as ipr:
        names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in ipr.get_links()}
        for route in ipr.get_routes(family=2, table=254):
            dst = route.get_attr("RTA_DST")
            text = f"{dst}/{route['dst_len']}" if dst else "default"
            if text != r.dst:
                continue
            if r.dev and names.get(route.get_attr("RTA_OIF")) != r.dev:
                continue
            return True
    return False
