"""A real host's wg-quick files beside its running state: what ``discover`` learns from them.

The hosts' snapshot reads /etc/wireguard/*.conf (nodes/sshstate.py), the secrets left on the host
(PrivateKey and PresharedKey lines dropped there, any other key-shaped word replaced). For each
discovered WireGuard interface with a file of its name, the lab file then says what the machine
does: the interface is brought up by wg-quick (``wg_quick = true``, with its MTU, Table, FwMark
and DNS), so the routes, rules and fwmark wg-quick made are no longer written out as if typed;
the running firewall rules, sysctls and routes that a PostUp line makes are marked as such (a
comment beside each); a PostUp rule that is no longer running, a hook line a lab cannot say,
and DNS on a host without resolvconf (where ``wg-quick up`` fails) are notes.
"""
from __future__ import annotations

import ipaddress
import shlex

from ..texts import say

DIR = "/etc/wireguard"
UP = ("PreUp", "PostUp")
IMPLIED_MATCH = {"tcp", "udp", "icmp", "icmpv6", "ipv6-icmp", "sctp", "udplite"}


def annotate(nodes: dict, states: dict, notes) -> None:
    """Change discovered lab-file data (``nodes``: node -> its table) by the hosts' wg-quick files."""
    from .hooks import read_hooks
    from .parse import parse_bytes
    for host, st in states.items():
        node = nodes.get(host)
        for iface, w in list((node or {}).get("wireguard", {}).items()):
            path = f"{DIR}/{iface}.conf"
            text = getattr(st, "wg_files", {}).get(path)
            if text is None:
                continue
            f, problems = parse_bytes(text.encode(), path)
            if f is None or problems:
                notes.add(host, say("wgquick_host.unreadable", "en", path=path,
                                    why=problems[0].text() if problems else "?"))
                continue
            node["wireguard"][iface] = _brought_up(node, iface, w, f, notes, host)
            hooks = read_hooks(f)
            _marked(node, hooks, path, notes, host)
            for s in hooks.skipped:
                notes.add(host, s.text())
            if (f.interface.dns or f.interface.dns_search) and "resolvconf" not in st.tools:
                notes.add(host, say("wgquick_host.no-resolvconf", "en", path=path, iface=iface,
                                    servers=", ".join(f.interface.dns + f.interface.dns_search)))


def _brought_up(node: dict, iface: str, w: dict, f, notes, host: str) -> dict:
    """The interface as wg-quick brings it up; what wg-quick made taken out of the node's items."""
    from ..model.lab import Peer, WgInterface, WgQuick
    from ..model.wgquick import FULL_TUNNEL_MARK, made_items
    i = f.interface
    out = {"wg_quick": True, **{k: v for k, v in w.items() if k not in ("fwmark", "peers")}}
    if not i.listen_port:
        out.pop("listen_port", None)         # the port the kernel picked: no setting of the file
    table = i.table or "auto"
    if table not in ("auto", "off", "main") and not table.isdigit():
        notes.add(host, say("wgquick_note.table-name", "en", table=table))
        table = "off"
    mark = w.get("fwmark")
    given = mark if i.fwmark else None
    if mark and (i.fwmark or mark != FULL_TUNNEL_MARK):
        out["fwmark"] = mark                  # wg-quick picked another, or the file gives it
        given = mark
    if i.mtu:
        out["mtu"] = i.mtu
    if table != "auto":
        out["table"] = int(table) if table.isdigit() else table
    if i.dns or i.dns_search:
        out["dns"] = list(i.dns + i.dns_search)
    out["peers"] = w.get("peers", [])
    addrs = w["address"] if isinstance(w["address"], list) else [w["address"]]
    model = WgInterface(iface, tuple(addrs), w.get("listen_port"), None,
                        tuple(Peer(p["peer"], tuple(p.get("allowed_ips", ()))) for p in w.get("peers", [])),
                        given, i.mtu, WgQuick(str(table), given))
    routes, rules, _, _ = made_items(model)
    made_routes = {(r.family, r.dst, r.dev, r.table) for r in routes}
    made_rules = {(r.family, r.table, r.fwmark, r.invert, r.suppress_prefixlength) for r in rules}
    node["routes"] = [r for r in node.get("routes", []) if _route_key(r) not in made_routes]
    node["rules"] = [r for r in node.get("rules", []) if _rule_key(r) not in made_rules]
    for k in ("routes", "rules"):
        if not node[k]:
            del node[k]
    return out


def _route_key(r: dict) -> tuple:
    dst = r["dst"]
    fam = 6 if dst == "::/0" or ":" in r.get("via", "") else 4 if dst == "default" else ipaddress.ip_network(dst).version
    return (fam, "default" if dst in ("default", "::/0") else dst, r.get("dev"), r.get("table"))


def _rule_key(r: dict) -> tuple:
    return (r.get("family", 4), str(r["table"]), r.get("fwmark"), bool(r.get("not")), r.get("suppress_prefixlength"))


def _marked(node: dict, hooks, path: str, notes, host: str) -> None:
    """A comment beside each running rule, sysctl and route a PreUp/PostUp line makes."""
    for a in hooks.actions:
        if a.phase not in UP:
            continue
        where = say("wgquick_host.made-by", "en", phase=a.phase, path=path, line=a.line)
        if a.kind in ("iptables", "ip6tables"):
            want = _rule_shape(a.value)
            item = next((x for x in node.get(a.kind, []) if "#" not in x and _rule_shape(x["rule"]) == want), None)
            if item is None:
                notes.add(host, say("wgquick_host.not-running", "en", phase=a.phase, path=path, line=a.line,
                                    command=f"{a.kind} {a.value}"))
            else:
                item["#"] = where
        elif a.kind == "sysctl":
            for x in node.get("sysctl", []):
                if x["key"] == a.value[0] and str(x["value"]) == str(a.value[1]):
                    x["#"] = where
        elif a.kind == "route":
            for x in node.get("routes", []):
                if _route_key(x) == _route_key(a.value) and x.get("via") == a.value.get("via"):
                    x["#"] = where


def _rule_shape(rule: str) -> tuple:
    """A rule as a set of its options, however it was written: iptables-save's ``-A`` for ``-I``
    (and no position), the ``-m udp`` it adds after ``-p udp``, ``/32`` on a host address."""
    words = shlex.split(rule)
    table = "filter"
    if "-t" in words[:-1]:
        i = words.index("-t")
        table = words[i + 1]
        del words[i:i + 2]
    for verb in ("-A", "-I", "--append", "--insert"):
        if verb in words[:-1]:
            i = words.index(verb)
            chain = words[i + 1]
            end = i + 3 if verb in ("-I", "--insert") and words[i + 2:i + 3] and words[i + 2].isdigit() else i + 2
            del words[i:end]
            break
    else:
        return (table, rule)
    groups, cur = [], []
    for w in words:
        if w.startswith("-") and cur and cur != ["!"]:
            groups.append(tuple(cur))
            cur = []
        cur.append(w)
    if cur:
        groups.append(tuple(cur))
    out = set()
    for g in groups:
        if g[0] == "-m" and len(g) == 2 and g[1] in IMPLIED_MATCH:
            continue
        if g[0] in ("-s", "-d", "--source", "--destination") and len(g) == 2:
            try:
                g = ({"--source": "-s", "--destination": "-d"}.get(g[0], g[0]), str(ipaddress.ip_network(g[1], strict=False)))
            except ValueError:
                pass
        out.add(g)
    return (table, chain, frozenset(out))
