"""Discovery from hosts' state to a lab file (wgtrace/hosts/discover.py), on made-up states: cables
from shared subnets, a switch for three hosts, the unknown middle for gateways nobody has, NAT
seen from WireGuard endpoints, what a lab file cannot say left out with a note; the result
passes every check of a lab file and survives being written as TOML."""
from __future__ import annotations

import tomllib

from wgtrace.hosts.discover import discover
from wgtrace.model.tomlout import lab_toml
from wgtrace.nodes.base import LinkInfo, RouteInfo
from wgtrace.nodes.sshstate import HostState
from wgtrace.nodes.wgstate import WgIface, WgPeer
from wgtrace.model.labfile import load_lab
from wgtrace.model.parse import parse_lab

KA, KB = "A" * 43 + "=", "B" * 43 + "="
_macs = iter(range(1, 1000))


def host(links: dict[str, tuple], routes=(), wg=(), forward="0", iptables="", rules=()) -> HostState:
    st = HostState(uid=0, tools={"ip", "wg", "tcpdump", "python3"})
    for i, (name, (addr, kind, master)) in enumerate(links.items(), 2):
        st.links[name] = LinkInfo(name, True, 1500, [addr] if addr else [], i, kind, master)
        st.macs[name] = f"02:00:00:00:00:{next(_macs):02x}"
    st.links["lo"] = LinkInfo("lo", True, 65536, ["127.0.0.1/8"], 1, "")
    st.routes = [RouteInfo(d, v, dev, "boot", t) for d, v, dev, t in routes]
    st.route_types = ["unicast"] * len(st.routes)
    st.wg = list(wg)
    st.wg_ifaces = [w.name for w in wg]
    st.sysctl = {"net.ipv4.ip_forward": forward, "net.ipv4.conf.all.rp_filter": "0",
                 "net.ipv4.conf.default.rp_filter": "0", "net.ipv4.conf.eth0.rp_filter": "2"}
    st.iptables = iptables
    st.rules = list(rules)
    return st


def states() -> dict[str, HostState]:
    a = host({"eth0": ("203.0.113.10/24", "veth", None), "wg0": ("10.99.0.1/24", "wireguard", None),
              "docker0": ("172.17.0.1/16", "bridge", None)},
             routes=[("default", "203.0.113.1", "eth0", 254), ("10.7.0.0/16", None, "wg0", 254),
                     ("default", None, "wg0", 51820)],
             wg=[WgIface("wg0", KA, 51820, [WgPeer(KB, "198.51.100.7:40000", ["10.99.0.2/32", "10.7.0.0/16", "::/0"],
                                                   1, 0, 0, 25)], fwmark=51820)],
             iptables="*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [3:4]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n"
                      "[1:2] -A FORWARD -o docker0 -j DOCKER\n[0:0] -A FORWARD -i wg0 -j ACCEPT\n"
                      "[0:0] -A DOCKER -j RETURN\n-A INPUT -m comment --comment \"keep ssh\" -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
             rules=[{"priority": 0, "src": "all", "table": "local"}, {"priority": 32766, "src": "all", "table": "main"},
                    {"priority": 32764, "src": "all", "table": "main", "suppress_prefixlength": 0},
                    {"priority": 32765, "not": None, "src": "all", "fwmark": "0xca6c", "table": "51820"},
                    {"priority": 100, "src": "10.0.0.0/8", "table": "7"}])
    b = host({"eth0": ("192.168.1.10/24", "veth", None), "wg0": ("10.99.0.2/24", "wireguard", None),
              "docker0": ("172.17.0.1/16", "bridge", None), "eth1": ("10.5.0.2/24", "veth", None)},
             routes=[("default", "192.168.1.1", "eth0", 254)], forward="1",
             wg=[WgIface("wg0", KB, 0, [WgPeer(KA, "203.0.113.10:51820", ["10.99.0.1/32"], 1, 0, 0, None)])])
    c = host({"eth1": ("10.5.0.3/24", "veth", None)})
    d = host({"eth1": ("10.5.0.4/24", "veth", None), "mgmt0": ("172.31.0.4/24", "veth", None)})
    return {"a": a, "b": b, "c": c, "internet": d}


def test_middle_switch_nat_and_notes(tmp_path):
    data, notes = discover("found", states(), {"internet": {"mgmt0"}})
    nodes = data["nodes"]
    # a gateway nobody has: one middle node, named so as not to clash with the host "internet"
    mid = nodes["internet2"]
    assert sorted(mid["addresses"].values()) == ["192.168.1.1/24", "203.0.113.1/24"]
    assert {"key": "net.ipv4.ip_forward", "value": "1"} in mid["sysctl"]
    # b is behind NAT as a sees it: the middle masquerades b's subnet toward a
    toward_a = next(i for i, c in mid["addresses"].items() if c.startswith("203."))
    assert {"rule": f"-t nat -A POSTROUTING -s 192.168.1.0/24 -o {toward_a} -j MASQUERADE"} in mid["iptables"]
    # three hosts on 10.5.0.0/24: a switch
    sw = [n for n in nodes if n.startswith("switch")]
    assert len(sw) == 1 and nodes[sw[0]]["bridges"] == ["br0"]
    assert sum(1 for l in data["links"] if l.get("bridge") == "br0") == 3
    # WireGuard: peers by host, the endpoint kept where it is the peer's own address
    a_peer = nodes["a"]["wireguard"]["wg0"]["peers"][0]
    b_peer = nodes["b"]["wireguard"]["wg0"]["peers"][0]
    assert a_peer == {"peer": "b", "allowed_ips": ["10.99.0.2/32", "10.7.0.0/16", "::/0"], "keepalive": 25}
    assert b_peer["endpoint"] == "a:eth0"
    assert nodes["a"]["wireguard"]["wg0"]["fwmark"] == 51820
    # the full tunnel's policy routing; a rule on a source address is not something a lab file says
    assert {"table": 51820, "fwmark": 51820, "not": True, "priority": 32765} in nodes["a"]["rules"]
    assert {"table": "main", "suppress_prefixlength": 0, "priority": 32764} in nodes["a"]["rules"]
    assert {"dst": "default", "dev": "wg0", "table": 51820} in nodes["a"]["routes"]
    # firewall: policy and plain rules kept, the DOCKER chain's rules left out
    assert nodes["a"]["policies"] == {"FORWARD": "DROP"}
    rules = [r["rule"] for r in nodes["a"]["iptables"]]
    assert rules == ["-t filter -A FORWARD -i wg0 -j ACCEPT",
                     "-t filter -A INPUT -m comment --comment 'keep ssh' -p tcp --dport 22 -j ACCEPT"]
    text = "\n".join(notes)
    for words in ("a: wg0 peer b: reached at 198.51.100.7:40000, an address of no host",
                  "b: docker0 172.17.0.1/16: the address is also a's",
                  "uses a chain of its own", "ip rule 100"):
        assert words in text, words
    assert "mgmt0" not in str(data)
    assert nodes["a"]["bridges"] == ["docker0"]        # a bridge of its own stays, with no port
    assert nodes["a"]["sysctl"][-1] == {"key": "net.ipv4.conf.eth0.rp_filter", "value": "2"}
    # a valid lab, as data and as the TOML discover writes
    parse_lab(data, "found.toml")
    path = tmp_path / "found.toml"
    path.write_text(lab_toml(data, ["a comment", "", "another\nline"]))
    assert tomllib.loads(path.read_text()) == data
    lab = load_lab(str(path))
    assert set(lab.nodes) == {"a", "b", "c", "internet", "internet2", sw[0]}


def test_bridge_host_keeps_its_ports():
    r = host({"lan": ("10.10.13.1/24", "bridge", None), "lan-x": ("", "veth", "lan"), "lan-y": ("", "veth", "lan"),
              "wan": ("192.0.2.117/24", "veth", None)}, forward="1")
    x = host({"ens192": ("10.10.13.62/24", "veth", None)}, routes=[("default", "10.10.13.1", "ens192", 254)])
    y = host({"ens192": ("10.10.13.61/24", "veth", None)}, routes=[("default", "10.10.13.1", "ens192", 254)])
    r.fdb = [{"mac": y.macs["ens192"], "ifname": "lan-x", "master": "lan", "state": "reachable"}]
    data, notes = discover("br", {"router": r, "company": x, "target": y}, {})
    links = {tuple(l["endpoints"]) for l in data["links"]}
    # the forwarding table says y's MAC is behind lan-x; the other member gets the other port
    assert ("router:lan-x", "target:ens192") in links and ("router:lan-y", "company:ens192") in links
    assert data["nodes"]["router"]["bridges"] == ["lan"]
    assert "wan 192.0.2.117/24: no other host on" in "\n".join(notes)
    parse_lab(data, "br.toml")


def test_tunnel_address_from_the_peers():
    """A WireGuard interface that lost its address: the peer's allowed-ips say which it was."""
    st = states()
    st["b"].links["wg0"].addresses = []
    data, notes = discover("lost", st, {})
    assert data["nodes"]["b"]["wireguard"]["wg0"]["address"] == "10.99.0.2/24"
    assert "b: wg0 has no address; a's peer for it says 10.99.0.2" in "\n".join(notes)
    parse_lab(data, "lost.toml")
