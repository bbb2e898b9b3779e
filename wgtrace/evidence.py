"""Read the state a verdict rests on, from the kernel of each node, as plain records.

- firewall: ``iptables-save -c`` before and after the probe; the rules and chain
  policies whose packet counters moved are the ones the probe met;
- sysctls: ip_forward, rp_filter (all and per interface), send_redirects;
- routes: the node's own route lookup for the packet as it was there (pyroute2);
- links: state and MTU; WireGuard: ``wg show all dump``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .node import NodeHandle
from .wgstate import WgIface

COUNTER_RE = re.compile(r"^\[(\d+):(\d+)\] (-A (\S+) .*)$")
POLICY_RE = re.compile(r"^:(\S+) (ACCEPT|DROP|-) \[(\d+):(\d+)\]$")


@dataclass(frozen=True)
class Counter:
    table: str
    chain: str
    rule: str          # "-A FORWARD -i wg0 -j ACCEPT", or "policy DROP"
    target: str        # ACCEPT, DROP, MASQUERADE, REJECT… or the policy


def parse_iptables_save(text: str) -> dict[Counter, int]:
    counts: dict[Counter, int] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif (m := POLICY_RE.match(line)) and m[2] != "-":
            counts[Counter(table, m[1], f"policy {m[2]}", m[2])] = int(m[3])
        elif m := COUNTER_RE.match(line):
            words = m[3].split()
            target = words[words.index("-j") + 1] if "-j" in words else ""
            counts[Counter(table, m[4], m[3], target)] = int(m[1])
    return counts


def counter_diff(before: dict[Counter, int], after: dict[Counter, int]) -> list[tuple[Counter, int]]:
    return [(c, n - before.get(c, 0)) for c, n in after.items() if n - before.get(c, 0) > 0]


@dataclass
class NodeFacts:
    node: str
    sysctl: dict[str, str] = field(default_factory=dict)
    links: dict[str, dict] = field(default_factory=dict)       # iface -> {"up", "mtu", "addresses"}
    wg: list[WgIface] = field(default_factory=list)
    rules: dict[Counter, int] = field(default_factory=dict)     # counters before the probe
    hits: list[tuple[Counter, int]] = field(default_factory=list)   # what moved during the probe
    rules_text: str = ""
    conntrack: list[str] = field(default_factory=list)   # entries for the probe's flow, in words


def _run_everywhere(nodes: list[NodeHandle], argv: list[str]) -> dict[str, str]:
    """Run one command on every node at once (started from this thread: preexec_fn and threads
    don't mix), and collect what each printed ("" on failure)."""
    jobs = [(h.name, h.start(argv)) for h in nodes]
    out = {}
    for name, job in jobs:
        r = job.wait(10)
        out[name] = r.stdout if r.returncode == 0 else ""
    return out


def _links(h: NodeHandle) -> dict[str, dict]:
    out = {}
    with h.iproute() as ipr:
        addrs: dict[int, list[str]] = {}
        for a in ipr.get_addr(family=2):
            addrs.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        for l in ipr.get_links():
            name = l.get_attr("IFLA_IFNAME")
            out[name] = {"up": bool(l["flags"] & 1), "mtu": l.get_attr("IFLA_MTU"),
                         "addresses": addrs.get(l["index"], []), "index": l["index"]}
    return out


SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.all.send_redirects")


def snapshot(nodes: list[NodeHandle]) -> dict[str, NodeFacts]:
    """Everything but the counters' movement; call ``finish`` after the probe for that."""
    from .wgstate import parse_dump
    facts = {}
    texts = _run_everywhere(nodes, ["iptables-save", "-c"])
    wgs = {n: parse_dump(t) for n, t in _run_everywhere(nodes, ["wg", "show", "all", "dump"]).items()}
    for h in nodes:
        f = NodeFacts(h.name)
        f.links = _links(h)
        for key in SYSCTLS:
            f.sysctl[key] = h.read_sysctl(key) or ""
        for iface in f.links:
            f.sysctl[f"net.ipv4.conf.{iface}.rp_filter"] = h.read_sysctl(f"net.ipv4.conf.{iface}.rp_filter") or ""
        f.wg = wgs[h.name] if any(n.startswith("wg") for n in f.links) else []
        f.rules_text = texts[h.name]
        f.rules = parse_iptables_save(texts[h.name])
        facts[h.name] = f
    return facts


def finish(nodes: list[NodeHandle], facts: dict[str, NodeFacts]) -> None:
    texts = _run_everywhere(nodes, ["iptables-save", "-c"])
    for name, f in facts.items():
        f.hits = counter_diff(f.rules, parse_iptables_save(texts[name]))


def route_get(h: NodeHandle, dst: str, src: str | None = None, iif: str | None = None) -> dict:
    """The node's route lookup; for a forwarded packet give its source and input interface."""
    try:
        with h.iproute() as ipr:
            kw = {"dst": dst}
            if iif:
                kw["iif"] = ipr.link_lookup(ifname=iif)[0]
                if src:
                    kw["src"] = src
            r = ipr.route("get", **kw)[0]
            oif = r.get_attr("RTA_OIF")
            dev = ipr.get_links(oif)[0].get_attr("IFLA_IFNAME") if oif else None
            return {"ok": True, "dev": dev, "via": r.get_attr("RTA_GATEWAY"), "type": r["type"]}
    except Exception as e:
        import os
        code = getattr(e, "code", 0)
        return {"ok": False, "error": os.strerror(code) if code else str(e), "errno": code}


def matching_route(h: NodeHandle, ip: str) -> str | None:
    """The prefix of the main-table route that ``ip`` matches, if it is more specific than
    the default route and not a connected network (the kind a fix can ``replace``)."""
    import ipaddress
    a = ipaddress.IPv4Address(ip)
    best = None
    with h.iproute() as ipr:
        for r in ipr.get_routes(family=2, table=254):
            dst = r.get_attr("RTA_DST")
            if not dst or r["proto"] == 2:        # default route, or a kernel (connected) route
                continue
            net = ipaddress.IPv4Network(f"{dst}/{r['dst_len']}")
            if a in net and (best is None or net.prefixlen > best.prefixlen):
                best = net
    return str(best) if best else None


def conntrack_lines(h: NodeHandle, src: str, dst: str) -> list[str]:
    """Connection tracking entries of the node for packets src -> dst, in words (pyroute2)."""
    from pyroute2 import Conntrack

    def nla(attrs) -> dict:          # netlink attributes come as (name, value[, flags]) tuples
        return {a[0]: a[1] for a in attrs}

    def tup(attrs, key):
        ip = nla(nla(nla(attrs)[key]["attrs"])["CTA_TUPLE_IP"]["attrs"])
        return ip.get("CTA_IP_V4_SRC"), ip.get("CTA_IP_V4_DST")
    out = []
    with h.inside():          # pyroute2 opens the netlink socket lazily: dump while inside
        ct = Conntrack()
        try:
            entries = list(ct.dump())
        except Exception:     # no conntrack in this kernel: no evidence, not an error
            entries = []
        finally:
            ct.close()
    try:
        for e in entries:
            attrs = e["attrs"]
            o_src, o_dst = tup(attrs, "CTA_TUPLE_ORIG")
            if (o_src, o_dst) != (src, dst):
                continue
            r_src, r_dst = tup(attrs, "CTA_TUPLE_REPLY")
            nat = "source NAT: replies come back to " + r_dst if r_dst != o_src else "no address translation"
            out.append(f"{o_src} > {o_dst}, reply {r_src} > {r_dst} ({nat})")
    except (KeyError, TypeError):
        pass
    return out[-3:]
