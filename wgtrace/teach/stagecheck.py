"""Does a stage's configuration hold in the real lab, however it was typed?

Each item the lab file assigns to a stage (sysctl, WireGuard interface or peer, route,
iptables rule) is checked against the node's state: sysctl values, ``iptables -C`` for rules,
routes and WireGuard read back from the kernel. So ``echo 1 > /proc/sys/net/ipv4/ip_forward``
passes a stage that shows ``sysctl -w``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..addr import normal, same_address
from ..nodes.base import Node
from ..model.lab import Lab


@dataclass
class Check:
    node: str
    what: str
    ok: bool


def stage_checks(lab: Lab, index: int, nodes: dict[str, Node], keys: dict[str, str]) -> list[Check]:
    stage = lab.stages[index].name
    checks: list[Check] = []
    for node in lab.nodes.values():
        h = nodes[node.name]
        wanted = [s for s in node.sysctl if s.stage == stage]
        got = h.sysctls([s.key for s in wanted]) if wanted else {}
        for s in wanted:
            checks.append(Check(node.name, f"{s.key} = {s.value}", got.get(s.key) == s.value))
        wgs = links = None
        for w in node.wireguard.values():
            items = [w] if w.stage == stage else []
            peers = [p for p in w.peers if p.stage == stage]
            if not items and not peers:
                continue
            wgs = wgs if wgs is not None else {i.name: i for i in h.wg()}
            cur = wgs.get(w.name)
            if items:
                links = links if links is not None else h.links()
                link = links.get(w.name)
                checks.append(Check(node.name, f"{w.name} exists and is up", bool(cur) and bool(link and link.up)))
                for c in w.addresses:
                    checks.append(Check(node.name, f"{w.name} has address {c}",
                                        bool(link) and any(same_address(c, a) and c.split("/")[1] == a.split("/")[1]
                                                           for a in link.addresses)))
                checks.append(Check(node.name, f"{w.name} uses the key in ./private",
                                    bool(cur) and cur.public_key == keys.get(node.name)))
            for p in peers:
                peer = next((x for x in (cur.peers if cur else []) if x.public_key == keys.get(p.peer)), None)
                nets = {normal(a) for a in (peer.allowed_ips if peer else [])}
                checks.append(Check(node.name, f"peer {p.peer} with allowed-ips {','.join(p.allowed_ips)}",
                                    peer is not None and set(p.allowed_ips) <= nets))
                if p.endpoint:
                    checks.append(Check(node.name, f"peer {p.peer} has an endpoint", bool(peer and peer.endpoint)))
        tables: dict[tuple, list] = {}
        for r in node.routes:
            if r.stage == stage:
                t = r.table or 254
                routes = tables.setdefault((t, r.family), h.routes(t, r.family))
                ok = any(x.dst == r.dst and (not r.dev or x.dev == r.dev) for x in routes)
                checks.append(Check(node.name, f"route {r.dst}" + (f" via {r.via}" if r.via else "")
                                    + (f" dev {r.dev}" if r.dev else ""), ok))
        for rule in node.iptables:
            if rule.stage == stage:
                args = list(rule.args)
                i = next((k for k, a in enumerate(args) if a in ("-A", "-I")), None)
                if i is not None:
                    if args[i] == "-I" and len(args) > i + 2 and args[i + 2].isdigit():
                        del args[i + 2]
                    args[i] = "-C"
                res = h.run([rule.program, *args])
                checks.append(Check(node.name, f"{rule.program} {rule.rule}", res.returncode == 0))
    return checks
