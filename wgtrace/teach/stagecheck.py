"""Does a stage's configuration hold in the real lab, however it was typed?

Each item the lab file assigns to a stage (sysctl, WireGuard interface or peer, route,
policy routing rule, iptables rule, nft command) is checked against the node's state: sysctl
values, ``iptables -C`` for rules, routes, ``ip rule``, ``nft list`` and WireGuard read back from
the kernel. So ``echo 1 > /proc/sys/net/ipv4/ip_forward`` passes a stage that shows ``sysctl -w``.
"""
from __future__ import annotations

from dataclasses import dataclass

import re

from ..addr import normal, same_address
from ..nodes.base import Node
from ..model.commands import rule_argv
from ..model.lab import IpRule, Lab


@dataclass
class Check:
    node: str
    what: str
    ok: bool


def stage_checks(lab: Lab, index: int, nodes: dict[str, Node], keys: dict[str, str]) -> list[Check]:
    stage = lab.stages[index].name
    checks: list[Check] = []
    for node in lab.nodes.values():
        h = nodes[node.name]
        wanted = [s for s in node.sysctl if s.stage == stage]
        got = h.sysctls([s.key for s in wanted]) if wanted else {}
        for s in wanted:
            checks.append(Check(node.name, f"{s.key} = {s.value}", got.get(s.key) == s.value))
        wgs = links = None
        for w in node.wireguard.values():
            items = [w] if w.stage == stage else []
            peers = [p for p in w.peers if p.stage == stage]
            if not items and not peers:
                continue
            wgs = wgs if wgs is not None else {i.name: i for i in h.wg()}
            cur = wgs.get(w.name)
            if items:
                links = links if links is not None else h.links()
                link = links.get(w.name)
                checks.append(Check(node.name, f"{w.name} exists and is up", bool(cur) and bool(link and link.up)))
                for c in w.addresses:
                    checks.append(Check(node.name, f"{w.name} has address {c}",
                                        bool(link) and any(same_address(c, a) and c.split("/")[1] == a.split("/")[1]
                                                           for a in link.addresses)))
                checks.append(Check(node.name, f"{w.name} uses the key in ./private",
                                    bool(cur) and cur.public_key == keys.get(node.name)))
                if w.fwmark:
                    checks.append(Check(node.name, f"{w.name} has fwmark {w.fwmark}", bool(cur) and cur.fwmark == w.fwmark))
            for p in peers:
                peer = next((x for x in (cur.peers if cur else []) if x.public_key == keys.get(p.peer)), None)
                nets = {normal(a) for a in (peer.allowed_ips if peer else [])}
                checks.append(Check(node.name, f"peer {p.peer} with allowed-ips {','.join(p.allowed_ips)}",
                                    peer is not None and set(p.allowed_ips) <= nets))
                if p.endpoint:
                    checks.append(Check(node.name, f"peer {p.peer} has an endpoint", bool(peer and peer.endpoint)))
        tables: dict[tuple, list] = {}
        for r in node.routes:
            if r.stage == stage:
                t = r.table or 254
                routes = tables.setdefault((t, r.family), h.routes(t, r.family))
                ok = any(x.dst == r.dst and (not r.dev or x.dev == r.dev) for x in routes)
                checks.append(Check(node.name, f"route {r.dst}" + (f" via {r.via}" if r.via else "")
                                    + (f" dev {r.dev}" if r.dev else ""), ok))
        rules: dict[int, list[str]] = {}
        for r in node.rules:
            if r.stage == stage:
                if r.family not in rules:
                    out = h.run(["ip", "-6" if r.family == 6 else "-4", "rule", "show"]).stdout
                    rules[r.family] = out.splitlines()
                checks.append(Check(node.name, " ".join(rule_argv(r)[1:]).replace("rule add", "rule"),
                                    any(rule_matches(r, line) for line in rules[r.family])))
        for rule in node.iptables:
            if rule.stage == stage:
                args = list(rule.args)
                i = next((k for k, a in enumerate(args) if a in ("-A", "-I")), None)
                if i is not None:
                    if args[i] == "-I" and len(args) > i + 2 and args[i + 2].isdigit():
                        del args[i + 2]
                    args[i] = "-C"
                res = h.run([rule.program, *args])
                checks.append(Check(node.name, f"{rule.program} {rule.rule}", res.returncode == 0))
        for c in node.nft:
            if c.stage == stage:
                checks.append(Check(node.name, f"nft {c.text}", nft_holds(c.text, h)))
    return checks


def nft_holds(text: str, node: Node) -> bool:
    """Is what this nft command adds in the node's ruleset? A table or chain by name; a rule by
    its words in its chain's listing; a set, map or counter by name, an element by its set."""
    w = text.split()
    if len(w) < 4 or w[0] not in ("add", "insert", "create"):
        return False
    kind, family, table = w[1], w[2], w[3]
    if kind == "table":
        return node.run(["nft", "list", "table", family, table]).returncode == 0
    if len(w) < 5:
        return False
    what = {"chain": "chain", "rule": "chain", "set": "set", "map": "map", "element": "set", "counter": "counter"}
    if kind not in what:
        return False
    r = node.run(["nft", "list", what[kind], family, table, w[4]])
    if r.returncode != 0:
        return False
    return kind != "rule" or nft_listed(" ".join(w[5:]), r.stdout)


def nft_listed(expr: str, listing: str) -> bool:
    """Does a line of ``nft list chain`` say this rule? nft prints a rule in its own words:
    quotes as they were, a one-element set without braces, a counter with its numbers."""
    def plain(s: str) -> str:
        s = re.sub(r"counter packets \d+ bytes \d+", "counter", s.replace('"', ""))
        s = re.sub(r"\{\s*([^{},\s]+)\s*\}", r"\1", s)
        return " ".join(re.sub(r"\s*,\s*", ", ", s).split())
    want = plain(expr)
    return any(plain(line.split(" # handle")[0]) == want for line in listing.splitlines())


def rule_matches(rule: IpRule, line: str) -> bool:
    """Does one line of ``ip rule show`` hold this rule? ("32765:\tnot from all fwmark 0xca6c lookup
    51820"; a priority, when the lab file gives one, must be the same)."""
    m = re.match(r"^(\d+):\s+(not )?from all (?:fwmark (0x[0-9a-f]+)(?:/0x[0-9a-f]+)? )?lookup (\S+)"
                 r"(?: suppress_prefixlength (\d+))?", line.strip())
    if not m:
        return False
    prio, invert, mark, table, suppress = m.groups()
    return (bool(invert) == rule.invert and (int(mark, 16) if mark else None) == rule.fwmark
            and table == str(rule.table) and (int(suppress) if suppress else None) == rule.suppress_prefixlength
            and (rule.priority is None or int(prio) == rule.priority))
