"""Turn the model into the commands a person would type on each node, stage by stage.

The commands are in the document's own style (``ip``, ``wg``, ``iptables``,
``sysctl``), so lessons show them and the lab builds itself by running them.
Public keys and endpoints are filled in from the built lab when known.
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import Lab, Node


@dataclass(frozen=True)
class Command:
    node: str
    text: str


def endpoint_of(lab: Lab, endpoint: str) -> str:
    """Resolve "node:iface" to "ip:port" (the node's address there, its WireGuard port)."""
    node, _, rest = endpoint.partition(":")
    if node not in lab.nodes:
        return endpoint
    n = lab.nodes[node]
    ports = [w.listen_port for w in n.wireguard.values() if w.listen_port]
    return f"{n.address_of(rest)}:{ports[0] if ports else 51820}"


def _pubkey(keys: dict[str, str] | None, node: str) -> str:
    if keys and node in keys:
        return keys[node]
    return f"<{node}-public-key>"


def node_commands(lab: Lab, node: Node, stage: str | None,
                  keys: dict[str, str] | None = None, base_links: bool = False) -> list[str]:
    """Commands for one node at one stage (``None`` is stage 0, the base)."""
    out: list[str] = []
    for s in node.sysctl:
        if s.stage == stage:
            out.append(f"sysctl -w {s.key}={s.value}")
    for w in node.wireguard.values():
        if w.stage == stage:
            out.append(f"ip link add dev {w.name} type wireguard")
            out.append(f"ip addr add {w.address} dev {w.name}")
            port = f" listen-port {w.listen_port}" if w.listen_port else ""
            out.append(f"wg set {w.name} private-key ./private{port}")
            out.append(f"ip link set {w.name} up")
        for p in w.peers:
            if p.stage == stage:
                cmd = f"wg set {w.name} peer {_pubkey(keys, p.peer)} allowed-ips {','.join(p.allowed_ips)}"
                if p.endpoint:
                    cmd += f" endpoint {endpoint_of(lab, p.endpoint)}"
                if p.keepalive is not None:
                    cmd += f" persistent-keepalive {p.keepalive}"
                out.append(cmd)
    for r in node.routes:
        if r.stage == stage and (stage is not None or base_links):
            cmd = f"ip route add {r.dst}"
            if r.via:
                cmd += f" via {r.via}"
            if r.dev:
                cmd += f" dev {r.dev}"
            out.append(cmd)
    if stage is None:
        for chain, pol in node.policies.items():
            out.append(f"iptables -P {chain} {pol}")
    for rule in node.iptables:
        if rule.stage == stage:
            out.append(f"iptables {rule.rule}")
    return out


def stage_commands(lab: Lab, index: int, keys: dict[str, str] | None = None) -> list[Command]:
    """All commands of stage ``index``, node by node in the lab file's order."""
    stage = None if index == 0 else lab.stages[index].name
    cmds: list[Command] = []
    for node in lab.nodes.values():
        for text in node_commands(lab, node, stage, keys, base_links=True):
            cmds.append(Command(node.name, text))
    return cmds
