"""Read what a running lab looks like now, node by node, from the kernel.

Links, addresses and routes come from netlink (pyroute2) inside each node's
namespace; WireGuard from ``wg show all dump``. The result is plain data that the
renderers (terminal, JSON) and the diagnosis read.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from .errors import LabStateError
from .node import NodeHandle
from .runtime import LabState, load_state, pid_alive, running_labs
from .wgstate import WgIface, read_wg


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
    complete: bool
    nodes: list[NodeState]
    now: float

    def to_json(self) -> dict:
        d = asdict(self)
        for n in d["nodes"]:
            for w in n["wireguard"]:
                for p in w["peers"]:
                    p["node"] = n["peer_names"].get(p["public_key"])
                    hs = p["latest_handshake"]
                    p["handshake_age_s"] = round(self.now - hs, 1) if hs else None
            del n["peer_names"]
        return d


def require_lab(lab: str | None) -> LabState:
    """The state of a running lab; ``None`` picks the only lab that is up."""
    if lab is None:
        labs = running_labs()
        if not labs:
            raise LabStateError("no lab is up: start one with 'wgtrace lab up'.")
        if len(labs) > 1:
            raise LabStateError(f"several labs are up ({', '.join(labs)}): name one with --lab.")
        lab = labs[0]
    st = load_state(lab)
    if st is None:
        how = "wgtrace lab up" if lab == "seed" else f"wgtrace lab up --name {lab}"
        raise LabStateError(f"lab {lab!r} is not up: start it with '{how}'.")
    if not st.complete:
        if pid_alive(st.pid):
            raise LabStateError(f"lab {lab!r} is still being built.")
        raise LabStateError(f"lab {lab!r} was left half-built by a crashed run: "
                            f"run 'wgtrace lab down {lab}'.")
    return st


def read_node(h: NodeHandle, keys: dict[str, str]) -> NodeState:
    ifaces, routes = [], []
    with h.iproute() as ipr:
        links = {l["index"]: l for l in ipr.get_links()}
        names = {i: l.get_attr("IFLA_IFNAME") for i, l in links.items()}
        addrs: dict[int, list[str]] = {}
        for a in ipr.get_addr(family=2):
            addrs.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        for i, l in links.items():
            if names[i] == "lo":
                continue
            up = bool(l["flags"] & 1)
            master = l.get_attr("IFLA_MASTER")
            ifaces.append(IfaceState(names[i], "up" if up else "down", l.get_attr("IFLA_MTU"),
                                     addrs.get(i, []), names.get(master) if master else None))
        for r in ipr.get_routes(family=2, table=254):
            dst = r.get_attr("RTA_DST")
            routes.append(RouteState(f"{dst}/{r['dst_len']}" if dst else "default",
                                     r.get_attr("RTA_GATEWAY"), names.get(r.get_attr("RTA_OIF"))))
    wg = read_wg(h) if any(i.name.startswith("wg") for i in ifaces) else []
    by_key = {v: k for k, v in keys.items()}
    return NodeState(h.name, ifaces, routes, wg, by_key)


def lab_status(lab: str | None = None) -> LabStatus:
    st = require_lab(lab)
    nodes = [read_node(NodeHandle(st.lab, n, st.wg_impl), st.keys) for n in st.nodes]
    return LabStatus(st.lab, st.stage, st.stage_name, st.wg_impl, st.complete, nodes, time.time())
