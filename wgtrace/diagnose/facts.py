"""Read the state a verdict rests on, from every node, as plain records (``NodeFacts``).

- firewall: every provider's rules with their counters, before and after the probe; the rules
  and policies whose counters moved are the ones the probe met (diagnose/firewall/);
- sysctls: forwarding, rp_filter, send_redirects, ignored pings, IPv6 forwarding and disable_ipv6;
- links: state, MTU, addresses of both families, kind; routes of both families (main table);
- WireGuard: ``wg show all dump`` (private keys dropped);
- connection tracking of the probe's flow, on nodes that translate addresses.
Everything goes through the nodes' own interface (nodes/base.py), so it reads a lab or a host.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..nodes.base import LinkInfo, Node, RouteInfo
from ..nodes.wgstate import WgIface, WgPeer
from . import firewall
from .firewall import Firewall, FwRule

FACTS_VERSION = 2


@dataclass
class NodeFacts:
    node: str
    sysctl: dict[str, str] = field(default_factory=dict)
    links: dict[str, LinkInfo] = field(default_factory=dict)
    routes: list[RouteInfo] = field(default_factory=list)          # the main table, both families
    neigh: list[tuple[str, str, str]] = field(default_factory=list)  # (iface, ip, state) after the probe
    wg: list[WgIface] = field(default_factory=list)
    fw: Firewall = field(default_factory=Firewall)
    conntrack: list[tuple[str, str, str, str]] = field(default_factory=list)   # the probe's flow
    readable: bool = True          # False: the node could not be read (gone, refused)

    def link(self, iface: str | None) -> LinkInfo | None:
        return self.links.get(iface or "")

    @property
    def wg_names(self) -> list[str]:
        return [w.name for w in self.wg]

    def routes_of(self, family: int) -> list[RouteInfo]:
        return [r for r in self.routes if r.family == family]

    def to_json(self) -> dict:
        return {"node": self.node, "sysctl": self.sysctl, "readable": self.readable,
                "links": {k: asdict(v) for k, v in self.links.items()},
                "routes": [asdict(r) for r in self.routes], "neigh": [list(n) for n in self.neigh],
                "wg": [asdict(w) for w in self.wg],
                "firewall": [[r.to_json(), n] for r, n in self.fw.rules.items()],
                "hits": [[r.to_json(), n] for r, n in self.fw.hits],
                "conntrack": [list(c) for c in self.conntrack]}

    @classmethod
    def from_json(cls, d: dict) -> "NodeFacts":
        if "firewall" in d:
            fw = Firewall({FwRule.from_json(r): n for r, n in d["firewall"]},
                          [(FwRule.from_json(r), n) for r, n in d["hits"]])
        else:                              # recorded before the firewall had a provider
            fw = _firewall_v1(d.get("rules", []), d.get("hits", []))
        return cls(d["node"], d["sysctl"], {k: LinkInfo(**v) for k, v in d["links"].items()},
                   [RouteInfo(**r) for r in d["routes"]], [tuple(n) for n in d["neigh"]],
                   [WgIface(w["name"], w["public_key"], w["listen_port"], [WgPeer(**p) for p in w["peers"]],
                            w.get("fwmark", 0)) for w in d["wg"]],
                   fw, [tuple(c) for c in d["conntrack"]], d.get("readable", True))


def _firewall_v1(rules: list, hits: list) -> Firewall:
    """Facts of version 1 kept (table, chain, rule text, target, packets): read them back through
    the iptables provider, as if they were iptables-save's lines."""
    def save(rows):
        by_table: dict[str, list[str]] = {}
        for table, chain, rule, target, n in rows:
            line = f":{chain} {target} [{n}:0]" if rule.startswith("policy ") else f"[{n}:0] {rule}"
            by_table.setdefault(table, []).append(line)
        return "\n".join(f"*{t}\n" + "\n".join(sorted(ls, key=lambda x: not x.startswith(":")))
                         for t, ls in by_table.items())
    counts = firewall.iptables.parse(save(rules))
    moved = firewall.iptables.parse(save(hits))
    by_text = {(r.table, r.chain, r.text): r for r in counts}
    return Firewall(counts, [(by_text.get((r.table, r.chain, r.text), r), n) for r, n in moved.items()])


def _run_everywhere(jobs: list[tuple[str, Node, tuple[str, ...]]]) -> dict[str, dict[str, str | None]]:
    """Run every (name, node, command) at once (started from this thread: preexec_fn and threads
    don't mix), and collect what each printed: name -> node -> output (None where it failed)."""
    started = []
    for key, h, argv in jobs:
        try:
            started.append((key, h.name, h.start(list(argv))))
        except Exception:        # OSError, or SubprocessError from a node that is gone
            started.append((key, h.name, None))
    out: dict[str, dict[str, str | None]] = {}
    for key, name, job in started:
        r = job.wait(10) if job else None
        out.setdefault(key, {})[name] = r.stdout if r is not None and r.returncode == 0 else None
    return out


def read_firewalls(nodes: list[Node], before: dict[str, dict[FwRule, int]] | None = None) -> dict[str, dict[FwRule, int]]:
    """Every provider's rules and counters on every node, read at once. ``before``: what was read
    before the probe; then only what can have moved is read again (a ruleset without a counter
    reads the same)."""
    jobs = [(k, h, argv) for h in nodes
            for k, argv in (firewall.reads() if before is None else firewall.reads_after(before.get(h.name, {}))).items()]
    outputs = _run_everywhere(jobs)
    return {h.name: firewall.parse({k: v[h.name] for k, v in outputs.items() if h.name in v}) for h in nodes}


SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.all.send_redirects",
           "net.ipv4.icmp_echo_ignore_all", "net.ipv6.conf.all.forwarding", "net.ipv6.conf.all.disable_ipv6",
           "net.ipv6.icmp.echo_ignore_all")
PER_IFACE = ("net.ipv4.conf.{}.rp_filter", "net.ipv6.conf.{}.forwarding", "net.ipv6.conf.{}.disable_ipv6")


def snapshot(nodes: list[Node]) -> dict[str, NodeFacts]:
    """Everything but the counters' movement; call ``finish`` after the probe for that."""
    facts = {}
    fws = read_firewalls(nodes)
    wgs = {h.name: h.wg_soon() for h in nodes}
    for h in nodes:
        f = NodeFacts(h.name)
        try:
            f.links = h.links()
        except OSError:          # the node is gone (a namespace removed by hand)
            f.readable = False
            facts[h.name] = f
            continue
        f.routes = h.routes(254, 4) + h.routes(254, 6)
        keys = list(SYSCTLS) + [k.format(i) for i in f.links for k in PER_IFACE]
        f.sysctl = h.sysctls(keys)
        f.wg = wgs[h.name]()
        f.fw = Firewall(fws[h.name])
        facts[h.name] = f
    return facts


def finish(nodes: list[Node], facts: dict[str, NodeFacts], family: int = 4) -> None:
    """After the probe: which counters moved, and the neighbour tables (a next hop that never
    answered ARP or neighbour solicitation)."""
    live = [h for h in nodes if facts[h.name].readable]
    after = read_firewalls(live, {h.name: facts[h.name].fw.rules for h in live})
    for name, counts in after.items():
        facts[name].fw.hits = firewall.diff(facts[name].fw.rules, counts)
    for h in live:
        try:
            facts[h.name].neigh = h.neighbours(family)
        except OSError:
            pass


def matching_route(f: NodeFacts, ip: str) -> str | None:
    """The prefix of the main-table route that ``ip`` matches, if it is more specific than
    the default route and not a connected network (the kind a fix can ``replace``)."""
    from ..addr import longest
    r = longest(ip, [r for r in f.routes if r.dst != "default" and r.proto != "kernel"], key=lambda r: r.dst)
    return r.dst if r else None
