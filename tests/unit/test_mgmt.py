"""The interface a host is logged into is management unless it carries the path (wgtrace/hosts/mgmt.py)."""
from __future__ import annotations

from wgtrace.hosts.mgmt import logins, management
from wgtrace.nodes.base import LinkInfo, RouteInfo
from wgtrace.nodes.sshstate import HostState
from wgtrace.nodes.wgstate import WgIface, WgPeer


def host(links: dict[str, list[str]], login: str, routes=(), wg=(), kinds=None) -> HostState:
    st = HostState(uid=0, ssh_server=login)
    st.links = {n: LinkInfo(n, True, 1500, a, i, (kinds or {}).get(n, "veth")) for i, (n, a) in enumerate(links.items())}
    st.routes = [RouteInfo(*r) for r in routes]
    st.wg = list(wg)
    st.wg_ifaces = [w.name for w in wg]
    return st


def test_a_management_network_is_left_out_and_a_path_is_not():
    states = {
        # logged into over mgmt0, which carries nothing else
        "home": host({"mgmt0": ["172.31.0.4/24"], "wlp2s0": ["192.168.0.9/24"], "wg0": ["192.168.2.2/24"]},
                     "172.31.0.4", [("default", "192.168.0.1", "wlp2s0")],
                     [WgIface("wg0", "K1", 51820, [WgPeer("K2", "203.0.113.10:51820", ["0.0.0.0/0"], 0, 0, 0, None)])],
                     {"wg0": "wireguard"}),
        # a VPS reached on its public address: its default route and a peer's endpoint are there
        "vps": host({"eth0": ["203.0.113.10/24"]}, "203.0.113.10", [("default", "203.0.113.1", "eth0")]),
        # a router reached on its LAN address, the gateway of another host
        "router": host({"lan": ["192.168.0.1/24"], "wan": ["198.51.100.14/24"]}, "192.168.0.1",
                       [("default", "198.51.100.1", "wan")]),
        # logged in through the tunnel
        "nas": host({"eth0": ["10.0.0.5/24"], "wg0": ["192.168.2.9/24"]}, "192.168.2.9", kinds={"wg0": "wireguard"}),
        "laptop": host({"eth0": ["10.0.0.7/24"]}, ""),                    # this machine: no SSH
    }
    assert management(states) == {"home": "mgmt0"}
    assert logins(states) == {"home": "172.31.0.4", "vps": "203.0.113.10", "router": "192.168.0.1",
                              "nas": "192.168.2.9"}


def test_a_login_address_used_as_a_peers_endpoint_stays():
    states = {"a": host({"eth1": ["10.1.0.2/24"]}, "10.1.0.2"),
              "b": host({"eth0": ["10.1.0.3/24"]}, "",
                        wg=[WgIface("wg0", "K", 1, [WgPeer("KA", "10.1.0.2:51820", ["10.9.0.1/32"], 0, 0, 0, None)])])}
    assert management(states) == {}
