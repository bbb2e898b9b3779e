"""What a network looks like now, node by node: links, addresses, routes, WireGuard peers, and for
an interface wg-quick brought up what it made (fwmark, rules, nft table, MTU) and the DNS it was
given, which a lab never applies.

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
class WgQuickState:
    """An interface wg-quick brought up, as the node has it now: what wg-quick made around it."""
    iface: str
    fwmark: int                     # 0: none
    rules: list[str]                # `ip rule` lines for its table, and suppress_prefixlength
    nft_tables: list[str]           # "ip wg-quick-wg0", "ip6 wg-quick-wg0"
    mtu: int
    dns: list[str]                  # from the lab file: shown, never applied in a lab
    dns_applied: bool = False


@dataclass
class NodeState:
    name: str
    ifaces: list[IfaceState]
    routes: list[RouteState]
    wireguard: list[WgIface]
    peer_names: dict[str, str] = field(default_factory=dict)   # public key -> node
    wg_quick: list[WgQuickState] = field(default_factory=list)


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


def read_wg_quick(node: Node, model_node, st: NodeState) -> list[WgQuickState]:
    """What wg-quick made for the node's wg-quick interfaces (the lab file says which they are)."""
    quick = [w for w in model_node.wireguard.values() if w.quick] if model_node else []
    if not quick:
        return []
    rules = [("ipv6 " if fam == "-6" else "") + " ".join(line.split()) for fam in ("-4", "-6")
             for line in node.run(["ip", fam, "rule", "show"]).stdout.splitlines()]
    tables = [" ".join(line.split()[1:3]) for line in node.run(["nft", "list", "tables"]).stdout.splitlines()
              if line.startswith("table ")]
    wg = {w.name: w for w in st.wireguard}
    mtu = {i.name: i.mtu for i in st.ifaces}
    out = []
    for w in quick:
        mark = wg[w.name].fwmark if w.name in wg else 0
        mine = [r for r in rules if (mark and f"lookup {mark}" in r) or "suppress_prefixlength" in r]
        out.append(WgQuickState(w.name, mark, mine, [t for t in tables if t.endswith(f" wg-quick-{w.name}")],
                                mtu.get(w.name, 0), list(w.quick.dns)))
    return out


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
    for ns in nodes:
        ns.wg_quick = read_wg_quick(net.nodes[ns.name], net.model.nodes.get(ns.name), ns)
    found = problems(net, nodes)
    return LabStatus(net.name, st.stage if st else -1, st.stage_name if st else "",
                     st.wg_impl if st else "", (st.complete if st else True) and not found, nodes, time.time(),
                     found)


def lab_status(lab: str | None = None) -> LabStatus:
    from ..opener import open_network
    with open_network(lab=lab) as net:
        return network_status(net)
