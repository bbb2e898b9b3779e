"""What a network looks like now, node by node: links, addresses, routes, WireGuard peers.

Read through each node's own interface (nodes/base.py), so the same picture comes from a
lab's namespaces or from real hosts (``wgtrace status --hosts``). The result is plain data for
the renderers.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from ..nodes.base import Node
from ..nodes.wgstate import WgIface
from ..network import Network


@dataclass
class IfaceState:
    name: str
    state: str              # "up" / "down"
    mtu: int
    addresses: list[str]
    master: str | None = None


@dataclass
class RouteState:
    dst: str
    via: str | None
    dev: str | None


@dataclass
class NodeState:
    name: str
    ifaces: list[IfaceState]
    routes: list[RouteState]
    wireguard: list[WgIface]
    peer_names: dict[str, str] = field(default_factory=dict)   # public key -> node


@dataclass
class LabStatus:
    lab: str
    stage: int
    stage_name: str
    wg_impl: str
    complete: bool                  # built, and nothing the lab made is gone
    nodes: list[NodeState]
    now: float
    problems: list[str] = field(default_factory=list)   # what is gone: an interface, a daemon

    def to_json(self, lang: str = "en") -> dict:
        d = asdict(self)
        for n in d["nodes"]:
            for w in n["wireguard"]:
                for p in w["peers"]:
                    p["node"] = n["peer_names"].get(p["public_key"])
                    hs = p["latest_handshake"]
                    p["handshake_age_s"] = round(self.now - hs, 1) if hs else None
            del n["peer_names"]
        return d


def read_node(node: Node, keys: dict[str, str]) -> NodeState:
    links = node.links()
    ifaces = [IfaceState(l.name, "up" if l.up else "down", l.mtu, l.addresses, l.master)
              for l in links.values() if l.name != "lo"]
    routes = [RouteState(r.dst, r.via, r.dev) for r in node.routes(254, 4)]
    routes += [RouteState("::/0" if r.dst == "default" else r.dst, r.via, r.dev) for r in node.routes(254, 6)]
    by_key = {v: k for k, v in keys.items()}
    return NodeState(node.name, ifaces, routes, node.wg(), by_key)


def problems(net: Network, nodes: list[NodeState]) -> list[str]:
    """What the lab made that is not there any more (an interface, a WireGuard daemon): not a
    misconfiguration, which diagnose finds, but a lab that is broken."""
    st, model = net.state, net.model
    stage = st.stage if st else len(model.stages) - 1
    order = {s.name: i for i, s in enumerate(model.stages)}
    out = []
    for ns in nodes:
        n = model.nodes.get(ns.name)
        if n is None:
            continue
        have = {i.name for i in ns.ifaces}
        ends = {e.iface for l in model.links for e in (l.a, l.b) if e.node == ns.name} | set(n.bridges)
        for ifname in sorted(ends - have):
            out.append(f"{ns.name}: interface {ifname} is gone")
        for w in n.wireguard.values():
            if order.get(w.stage, 0) <= stage and w.name not in have:
                out.append(f"{ns.name}: WireGuard interface {w.name} is gone (its daemon is not running)")
    return out


def network_status(net: Network) -> LabStatus:
    st = net.state
    nodes = [read_node(n, net.keys) for n in net.nodes.values()]
    found = problems(net, nodes)
    return LabStatus(net.name, st.stage if st else -1, st.stage_name if st else "",
                     st.wg_impl if st else "", (st.complete if st else True) and not found, nodes, time.time(),
                     found)


def lab_status(lab: str | None = None) -> LabStatus:
    from ..opener import open_network
    with open_network(lab=lab) as net:
        return network_status(net)
