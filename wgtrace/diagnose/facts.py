"""Read the state a verdict rests on, from every node, as plain records (``NodeFacts``).

- firewall: ``iptables-save -c`` before and after the probe; the rules and chain policies
  whose packet counters moved are the ones the probe met (diagnose/iptables.py);
- sysctls: ip_forward, rp_filter (all and per interface), send_redirects;
- links: state, MTU, addresses, kind; WireGuard: ``wg show all dump`` (private keys dropped);
- connection tracking of the probe's flow, on nodes that translate addresses.
Everything goes through the nodes' own interface (nodes/base.py), so it reads a lab or a host.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..nodes.base import LinkInfo, Node, RouteInfo
from ..nodes.wgstate import WgIface, WgPeer, parse_dump
from .iptables import Counter, counter_diff, parse_iptables_save


@dataclass
class NodeFacts:
    node: str
    sysctl: dict[str, str] = field(default_factory=dict)
    links: dict[str, LinkInfo] = field(default_factory=dict)
    routes: list[RouteInfo] = field(default_factory=list)          # the main table
    neigh: list[tuple[str, str, str]] = field(default_factory=list)  # (iface, ip, state) after the probe
    wg: list[WgIface] = field(default_factory=list)
    rules: dict[Counter, int] = field(default_factory=dict)      # counters before the probe
    hits: list[tuple[Counter, int]] = field(default_factory=list)   # what moved during the probe
    conntrack: list[tuple[str, str, str, str]] = field(default_factory=list)   # the probe's flow
    readable: bool = True          # False: the node could not be read (gone, refused)

    def link(self, iface: str | None) -> LinkInfo | None:
        return self.links.get(iface or "")

    @property
    def wg_names(self) -> list[str]:
        return [w.name for w in self.wg]

    def to_json(self) -> dict:
        return {"node": self.node, "sysctl": self.sysctl, "readable": self.readable,
                "links": {k: asdict(v) for k, v in self.links.items()},
                "routes": [asdict(r) for r in self.routes], "neigh": [list(n) for n in self.neigh],
                "wg": [asdict(w) for w in self.wg],
                "rules": [[c.table, c.chain, c.rule, c.target, n] for c, n in self.rules.items()],
                "hits": [[c.table, c.chain, c.rule, c.target, n] for c, n in self.hits],
                "conntrack": [list(c) for c in self.conntrack]}

    @classmethod
    def from_json(cls, d: dict) -> "NodeFacts":
        return cls(d["node"], d["sysctl"], {k: LinkInfo(**v) for k, v in d["links"].items()},
                   [RouteInfo(**r) for r in d["routes"]], [tuple(n) for n in d["neigh"]],
                   [WgIface(w["name"], w["public_key"], w["listen_port"], [WgPeer(**p) for p in w["peers"]],
                            w.get("fwmark", 0)) for w in d["wg"]],
                   {Counter(*r[:4]): r[4] for r in d["rules"]}, [(Counter(*r[:4]), r[4]) for r in d["hits"]],
                   [tuple(c) for c in d["conntrack"]], d.get("readable", True))


def _run_everywhere(nodes: list[Node], argv: list[str]) -> dict[str, str | None]:
    """Run one command on every node at once (started from this thread: preexec_fn and threads
    don't mix), and collect what each printed (None where it failed)."""
    jobs = []
    for h in nodes:
        try:
            jobs.append((h.name, h.start(argv)))
        except Exception:        # OSError, or SubprocessError from a node that is gone
            jobs.append((h.name, None))
    out: dict[str, str | None] = {}
    for name, job in jobs:
        r = job.wait(10) if job else None
        out[name] = r.stdout if r is not None and r.returncode == 0 else None
    return out


SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.all.send_redirects",
           "net.ipv4.icmp_echo_ignore_all")


def snapshot(nodes: list[Node]) -> dict[str, NodeFacts]:
    """Everything but the counters' movement; call ``finish`` after the probe for that."""
    facts = {}
    texts = _run_everywhere(nodes, ["iptables-save", "-c"])
    dumps = _run_everywhere([h for h in nodes if not h.wg_in_process], ["wg", "show", "all", "dump"])
    for h in nodes:
        f = NodeFacts(h.name)
        try:
            f.links = h.links()
        except OSError:          # the node is gone (a namespace removed by hand)
            f.readable = False
            facts[h.name] = f
            continue
        f.routes = h.routes()
        keys = list(SYSCTLS) + [f"net.ipv4.conf.{i}.rp_filter" for i in f.links]
        f.sysctl = h.sysctls(keys)
        f.wg = h.wg() if h.wg_in_process else parse_dump(dumps[h.name] or "")
        f.rules = parse_iptables_save(texts[h.name] or "")
        facts[h.name] = f
    return facts


def finish(nodes: list[Node], facts: dict[str, NodeFacts]) -> None:
    """After the probe: which counters moved, and the ARP tables (a next hop that never answered)."""
    live = [h for h in nodes if facts[h.name].readable]
    texts = _run_everywhere(live, ["iptables-save", "-c"])
    for name, text in texts.items():
        facts[name].hits = counter_diff(facts[name].rules, parse_iptables_save(text or ""))
    for h in live:
        try:
            facts[h.name].neigh = h.neighbours()
        except OSError:
            pass


def matching_route(f: NodeFacts, ip: str) -> str | None:
    """The prefix of the main-table route that ``ip`` matches, if it is more specific than
    the default route and not a connected network (the kind a fix can ``replace``)."""
    import ipaddress
    a = ipaddress.IPv4Address(ip)
    best = None
    for r in f.routes:
        if r.dst == "default" or r.proto == "kernel":
            continue
        net = ipaddress.IPv4Network(r.dst)
        if a in net and (best is None or net.prefixlen > best.prefixlen):
            best = net
    return str(best) if best else None
