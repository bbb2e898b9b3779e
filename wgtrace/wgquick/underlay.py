"""The network under the tunnels, which no wg-quick file describes: inferred, and said to be.

Every machine a file's ``Endpoint`` dials (or that only listens) is on the internet, at the
address the endpoint names (a /24 or /64 around it) or, when only a name or nothing says where, at
a documentation address (203.0.113.0/24, 2001:db8:113::/64). Every other machine is a client
behind a NAT router of its own (a home: 100.64.K.0/24 outside, 192.168.K.0/24 inside, and for a
client that dials an IPv6 endpoint 2001:db8:64:K::/64 and fd00:64:0:K::/64). One router,
``internet``, holds a gateway on each public subnet; machines whose subnets meet share a bridge
on it. A dual-stack host, ``web`` (198.18.0.80, 2001:db8:80::80), stands for the internet that
full-tunnel clients reach through their server. Addresses the files use are never reused.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .words import Said, lab_text, note

PUBLIC = {4: ipaddress.ip_network("203.0.113.0/24"), 6: ipaddress.ip_network("2001:db8:113::/64")}
WEB_HOST = {4: 80, 6: 0x80}
BIG = {4: 8, 6: 16}            # networks wider than this (0.0.0.0/1…) reserve nothing


def _nth(base: str, k: int, plen: int):
    """The k-th subnet of length ``plen`` in ``base``."""
    net = ipaddress.ip_network(base)
    return ipaddress.ip_network((int(net.network_address) + (k << (net.max_prefixlen - plen)), plen))


# k -> the k-th candidate subnet of each kind, from 0 (None past the end)
POOLS = {
    "web4": lambda k: ipaddress.ip_network(f"198.18.{k}.0/24") if k < 256 else None,
    "web6": lambda k: ipaddress.ip_network(f"2001:db8:{0x80 + k:x}::/64") if k < 0x7f80 else None,
    "wan4": lambda k: _nth("100.64.0.0/10", k + 1, 24) if k < 16383 else None,
    "wan6": lambda k: ipaddress.ip_network(f"2001:db8:64:{k + 1:x}::/64") if k < 65535 else None,
    "lan4": lambda k: (ipaddress.ip_network(f"192.168.{k + 1}.0/24") if k < 255 else
                       _nth("172.16.0.0/12", k - 255, 24) if k < 255 + 4096 else
                       _nth("198.19.0.0/16", k - 255 - 4096, 24) if k < 255 + 4096 + 256 else None),
    "lan6": lambda k: ipaddress.ip_network(f"fd00:64:0:{k + 1:x}::/64") if k < 65535 else None,
}


@dataclass
class Site:
    """A file's machine, as the underlay sees it."""
    node: str
    public: bool
    wan: str                                        # its interface to the underlay
    claimed: list[str] = field(default_factory=list)       # addresses endpoints dial it at
    families: set[int] = field(default_factory=lambda: {4})


@dataclass
class Underlay:
    addresses: dict[str, dict[str, list[str]]] = field(default_factory=dict)     # node -> iface -> CIDRs
    routes: dict[str, list[dict]] = field(default_factory=dict)
    nodes: dict[str, dict] = field(default_factory=dict)                         # nodes it adds
    links: list[dict] = field(default_factory=list)
    notes: list[Said] = field(default_factory=list)
    web: str = ""
    web_addresses: dict[int, str] = field(default_factory=dict)
    homes: dict[str, str] = field(default_factory=dict)                          # client -> its router


class Taken:
    """Networks the files use, and what has been handed out here: nothing is given twice."""

    def __init__(self, nets) -> None:
        self.spans = [self._span(n) for n in nets if n.prefixlen >= BIG[n.version]]
        self.cursor: dict[str, int] = {}

    @staticmethod
    def _span(net) -> tuple[int, int, int]:
        return net.version, int(net.network_address), int(net.broadcast_address)

    def free(self, net) -> bool:
        v, a, b = self._span(net)
        return not any(x == v and s <= b and a <= e for x, s, e in self.spans)

    def take(self, net) -> None:
        self.spans.append(self._span(net))

    def subnet(self, pool: str):
        """The next free subnet of a pool (each pool goes on where it stopped)."""
        k = self.cursor.get(pool, 0)
        while (net := POOLS[pool](k)) is not None:
            k += 1
            if self.free(net):
                self.cursor[pool] = k
                self.take(net)
                return net
        from ..errors import LabFileError
        from .words import Said
        raise LabFileError(Said("wgquick_error.no-room", {"pool": pool}).text())


def _name(want: str, used: set[str]) -> str:
    name, n = want, 1
    while name in used:
        n += 1
        name = f"{want[:14 - len(str(n))]}{n}"
    used.add(name)
    return name


def build(sites: list[Site], taken: Taken, v6: bool, used_names: set[str]) -> Underlay:
    u = Underlay()
    groups: dict = {}                                    # network -> [(node, iface, address)]

    def place(node: str, iface: str, cidr: str) -> None:
        i = ipaddress.ip_interface(cidr)
        u.addresses.setdefault(node, {}).setdefault(iface, []).append(str(i))
        groups.setdefault(i.network, []).append((node, iface, i.ip))

    fams = (4, 6) if v6 else (4,)
    public_hosts = {4: 10, 6: 0x10}
    for s in sites:
        if not s.public:
            continue
        for c in s.claimed:
            a = ipaddress.ip_address(c)
            place(s.node, s.wan, f"{a}/{24 if a.version == 4 else 64}")
        for fam in fams:
            if fam in s.families and not any(ipaddress.ip_address(c).version == fam for c in s.claimed):
                while True:
                    a = PUBLIC[fam].network_address + public_hosts[fam]
                    public_hosts[fam] += 1
                    if taken.free(ipaddress.ip_network(f"{a}/{a.max_prefixlen}")):
                        break
                place(s.node, s.wan, f"{a}/{PUBLIC[fam].prefixlen}")
                u.notes.append(note("public-inferred", node=s.node, address=str(a)))
    for s in sites:
        for a in u.addresses.get(s.node, {}).get(s.wan, []):
            taken.take(ipaddress.ip_interface(a).network)
    web = _name("web", used_names)
    u.web = web
    for fam in fams:
        net = taken.subnet(f"web{fam}")
        a = net.network_address + WEB_HOST[fam]
        place(web, "eth0", f"{a}/{net.prefixlen}")
        u.web_addresses[fam] = str(a)
    u.nodes[web] = {"description": lab_text("web"), "addresses": u.addresses[web]}
    for s in sites:
        if s.public:
            continue
        router = _name(f"{_short(s.node, 10)}-nat", used_names)
        u.homes[s.node] = router
        rules = {4: [], 6: []}
        for fam in sorted(s.families | {4}):
            wan, lan = taken.subnet(f"wan{fam}"), taken.subnet(f"lan{fam}")
            place(router, "wan", f"{wan.network_address + 2}/{wan.prefixlen}")
            u.addresses[router].setdefault("lan", []).append(f"{lan.network_address + 1}/{lan.prefixlen}")
            u.addresses.setdefault(s.node, {}).setdefault(s.wan, []).append(f"{lan.network_address + 2}/{lan.prefixlen}")
            u.routes.setdefault(s.node, []).append(_default(fam, str(lan.network_address + 1)))
            rules[fam].append({"rule": "-t nat -A POSTROUTING -o wan -j MASQUERADE"})
        node = {"description": lab_text("home-router", client=s.node), "addresses": u.addresses[router],
                "sysctl": _forwarding(6 in s.families), "iptables": rules[4]}
        if rules[6]:
            node["ip6tables"] = rules[6]
        u.nodes[router] = node
        u.links.append({"endpoints": [f"{router}:lan", f"{s.node}:{s.wan}"]})
    _internet(u, groups, taken, used_names, v6)
    for n, d in u.nodes.items():
        if u.routes.get(n):
            d["routes"] = u.routes.pop(n)
    return u


def _short(name: str, limit: int) -> str:
    """The last words of a node name that fit (``client-alice`` -> ``alice``)."""
    words = name.split("-")
    while len("-".join(words)) > limit and len(words) > 1:
        words.pop(0)
    return "-".join(words)[:limit].strip("-")


def _default(fam: int, via: str) -> dict:
    return {"dst": "default" if fam == 4 else "::/0", "via": via}


def _forwarding(v6: bool) -> list[dict]:
    out = [{"key": "net.ipv4.ip_forward", "value": "1"}]
    return out + ([{"key": "net.ipv6.conf.all.forwarding", "value": "1"}] if v6 else [])


def _internet(u: Underlay, groups: dict, taken: Taken, used_names: set[str], v6: bool) -> None:
    """One router with a gateway on every group; machines whose groups meet share a bridge."""
    name = _name("internet", used_names)
    owner: dict = {}                                  # union-find over nodes sharing a group

    def root(x):
        while owner.setdefault(x, x) != x:
            x = owner[x]
        return x
    for members in groups.values():
        for node, _, _ in members[1:]:
            owner[root(node)] = root(members[0][0])
    segments: dict = {}
    for net, members in groups.items():
        segments.setdefault(root(members[0][0]), []).append(net)
    addresses: dict[str, list[str]] = {}
    bridges: list[str] = []
    has_default: set = set()
    for nets in segments.values():
        members = sorted({(n, i) for net in nets for n, i, _ in groups[net]})
        if len(members) == 1:
            here = f"to-{members[0][0][:12]}".rstrip("-")
            here = here if here not in addresses else f"to{len(addresses)}"
            u.links.append({"endpoints": [f"{name}:{here}", f"{members[0][0]}:{members[0][1]}"]})
        else:
            here = f"br{len(bridges)}"
            bridges.append(here)
            for n, i in members:
                u.links.append({"endpoints": [f"{name}:{here}p{len(u.links)}", f"{n}:{i}"], "bridge": here})
        for net in nets:
            used = {a for _, _, a in groups[net]}
            gw = next(h for h in net.hosts() if h not in used)
            addresses.setdefault(here, []).append(f"{gw}/{net.prefixlen}")
            for n, _, _ in groups[net]:
                if (n, net.version) not in has_default:
                    has_default.add((n, net.version))
                    u.routes.setdefault(n, []).append(_default(net.version, str(gw)))
    node = {"description": lab_text("internet"), "addresses": addresses}
    if bridges:
        node["bridges"] = bridges
    node["sysctl"] = _forwarding(v6)
    u.nodes = {name: node, **u.nodes}
