"""Turn a lab file's (expanded) data into the model, checking every field on the way.

Every problem is collected with the file and key it concerns (fields.Errors); validate.py
then checks what needs the whole lab, and the loader raises them all together.
"""
from __future__ import annotations

import re

from ..addr import family, same_address
from . import fields as F
from .lab import (Check, Endpoint, IpRule, Lab, Link, NftCommand, Node, Peer, Route, Rule, Service, Stage,
                  Sysctl, WgInterface)
from .wgquick import KEYS as QUICK_KEYS, made_items, parse_quick

TOP_KEYS = {"name", "description", "params", "probe", "checks", "stages", "nodes", "links"}
NODE_KEYS = {"description", "addresses", "bridges", "routes", "rules", "sysctl", "policies",
             "policies6", "iptables", "ip6tables", "nft", "wireguard", "services"}
ENDPOINT_RE = re.compile(r"^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]):[A-Za-z0-9_.-]+$")


def parse_stages(errs: F.Errors, data: dict) -> list[Stage]:
    stages = [Stage("base", "Machines and links as they start")]
    for i, st in enumerate(F.table_list(errs, "stages", data.get("stages"))):
        key = f"stages[{i}]"
        F.unknown(errs, key, st, {"name", "title"})
        sname = st.get("name")
        if not isinstance(sname, str) or not re.match(r"^[a-z][a-z0-9-]{0,31}$", sname):
            errs.add(f"{key}.name", "required: lower-case letters, digits and '-'")
            continue
        if sname == "base" or any(s.name == sname for s in stages):
            errs.add(f"{key}.name", f"stage {sname!r} is defined twice")
            continue
        stages.append(Stage(sname, F.text(errs, f"{key}.title", st.get("title", ""))))
    return stages


class _NodeParser:
    def __init__(self, errs: F.Errors, stage_names: set[str]) -> None:
        self.errs = errs
        self.stage_names = stage_names
        self.route_index: dict[str, list[int]] = {}    # node -> lab-file index of each route kept

    def stage_of(self, key: str, d: dict) -> str | None:
        st = d.get("stage")
        if st is not None and st not in self.stage_names:
            self.errs.add(f"{key}.stage", f"unknown stage {st!r}")
        return st

    def node(self, nname: str, nd) -> Node | None:
        errs, key = self.errs, f"nodes.{nname}"
        if not F.NAME_RE.match(nname):
            errs.add(key, "node names are lower-case letters, digits and '-', at most 14 characters")
        if not isinstance(nd, dict):
            errs.add(key, "must be a table")
            return None
        F.unknown(errs, key, nd, NODE_KEYS)
        addresses = {}
        raw = nd.get("addresses") or {}
        if not isinstance(raw, dict):
            errs.add(f"{key}.addresses", 'must be a table like { eth0 = "10.0.0.1/24" }')
            raw = {}
        for ifname, c in raw.items():
            if F.iface(errs, f"{key}.addresses.{ifname}", ifname):
                cs = F.cidrs(errs, f"{key}.addresses.{ifname}", c)
                if cs:
                    addresses[ifname] = cs
        bridges = nd.get("bridges") or []
        if not isinstance(bridges, list):
            errs.add(f"{key}.bridges", 'must be a list of names like ["lan"]')
            bridges = []
        bridges = [b for j, b in enumerate(bridges) if F.iface(errs, f"{key}.bridges[{j}]", b)]
        policies, policies6 = self.policies(key, nd, "policies"), self.policies(key, nd, "policies6")
        wgs = {}
        raw_wg = nd.get("wireguard") or {}
        for wname, w in (raw_wg.items() if isinstance(raw_wg, dict) else ()):
            wg = self.wireguard(f"{key}.wireguard.{wname}", wname, w)
            if wg:
                wgs[wname] = wg
        rules = self.iptables(key, nd, "iptables", 4) + self.iptables(key, nd, "ip6tables", 6)
        routes, sysctls, ip_rules = self.routes(key, nname, nd), self.sysctls(key, nd), self.ip_rules(key, nd)
        for wname, w in wgs.items():
            if w.quick:
                self.made_by_wg_quick(f"{key}.wireguard.{wname}", w, routes, ip_rules, sysctls)
        return Node(nname, F.text(errs, f"{key}.description", nd.get("description")), addresses, tuple(bridges),
                    tuple(routes), tuple(sysctls), policies,
                    tuple(rules), wgs, tuple(self.services(key, nd)), tuple(ip_rules), policies6,
                    tuple(self.nft(key, nd)))

    def made_by_wg_quick(self, wk: str, w: WgInterface, routes: list, ip_rules: list, sysctls: list) -> None:
        """Add what wg-quick makes for ``w`` to the node's items; one the lab file also declares
        would be typed again after wg-quick made it (and fail: the route exists)."""
        from .wgquick import made_items
        mr, mrules, msys, _ = made_items(w)
        same = lambda x: {k: v for k, v in vars(x).items() if k not in ("stage", "made_by", "priority")}
        for kind, have, made in (("routes", routes, mr), ("rules", ip_rules, mrules)):
            for m in made:
                if any(same(h) == same(m) for h in have):
                    self.errs.add(f"{wk}.wg_quick", f"wg-quick makes {_said(m)} itself: leave it out of the node's {kind}")
            have += made
        sysctls += [s for s in msys if not any(h.key == s.key for h in sysctls)]

    def policies(self, key: str, nd: dict, name: str) -> dict[str, str]:
        out = {}
        raw = nd.get(name) or {}
        if not isinstance(raw, dict):
            self.errs.add(f"{key}.{name}", 'must be a table like { FORWARD = "DROP" }')
            return out
        for chain, pol in raw.items():
            if chain not in ("INPUT", "FORWARD", "OUTPUT"):
                self.errs.add(f"{key}.{name}.{chain}", "only INPUT, FORWARD and OUTPUT have policies")
            elif pol not in ("ACCEPT", "DROP"):
                self.errs.add(f"{key}.{name}.{chain}", f"{pol!r} is not ACCEPT or DROP")
            else:
                out[chain] = pol
        return out

    def routes(self, key: str, nname: str, nd: dict) -> list[Route]:
        out = []
        for i, r in enumerate(F.table_list(self.errs, f"{key}.routes", nd.get("routes"))):
            rk = f"{key}.routes[{i}]"
            F.unknown(self.errs, rk, r, {"dst", "via", "dev", "table", "stage"})
            dst = F.network(self.errs, f"{rk}.dst", r.get("dst"))
            via = F.ip(self.errs, f"{rk}.via", r["via"]) if "via" in r else None
            fam = family(via) if dst == "default" and via else 6 if dst == "::/0" else family(dst) or 4
            if dst and via and dst != "default" and family(via) != fam:
                self.errs.add(f"{rk}.via", f"{via} is an IPv{family(via)} gateway for an IPv{fam} network")
            if dst in ("::/0", "0.0.0.0/0"):
                dst = "default"
            dev = F.iface(self.errs, f"{rk}.dev", r["dev"]) if "dev" in r else None
            table = F.integer(self.errs, f"{rk}.table", r["table"], 1, 2 ** 31 - 1, "a routing table number") \
                if "table" in r else None
            if "via" not in r and "dev" not in r:
                self.errs.add(rk, "needs via, dev or both")
            if dst:
                out.append(Route(dst, via, dev, self.stage_of(rk, r), table, fam))
                self.route_index.setdefault(nname, []).append(i)
        return out

    def ip_rules(self, key: str, nd: dict) -> list[IpRule]:
        out = []
        for i, r in enumerate(F.table_list(self.errs, f"{key}.rules", nd.get("rules"))):
            rk = f"{key}.rules[{i}]"
            F.unknown(self.errs, rk, r, {"table", "fwmark", "not", "suppress_prefixlength", "priority", "stage",
                                         "family"})
            fam = r.get("family", 4)
            if fam not in (4, 6):
                self.errs.add(f"{rk}.family", f"{fam!r} is not 4 or 6")
                fam = 4
            table = r.get("table")
            if not (table == "main" or (type(table) is int and 0 < table < 2 ** 31)):
                self.errs.add(f"{rk}.table", f"{table!r} is not a table number or \"main\"")
                continue
            fw = F.integer(self.errs, f"{rk}.fwmark", r["fwmark"], 1, 2 ** 32 - 1, "a firewall mark") \
                if "fwmark" in r else None
            sp = F.integer(self.errs, f"{rk}.suppress_prefixlength", r["suppress_prefixlength"], 0, 128,
                           "a prefix length") if "suppress_prefixlength" in r else None
            prio = F.integer(self.errs, f"{rk}.priority", r["priority"], 1, 32765, "a rule priority") \
                if "priority" in r else None
            if not isinstance(r.get("not", False), bool):
                self.errs.add(f"{rk}.not", "is true or false")
            out.append(IpRule(str(table), fw, bool(r.get("not", False)), sp, prio, self.stage_of(rk, r), fam))
        return out

    def sysctls(self, key: str, nd: dict) -> list[Sysctl]:
        out = []
        for i, s in enumerate(F.table_list(self.errs, f"{key}.sysctl", nd.get("sysctl"))):
            sk = f"{key}.sysctl[{i}]"
            F.unknown(self.errs, sk, s, {"key", "value", "stage"})
            kv = F.sysctl(self.errs, sk, s.get("key"), s.get("value"))
            if kv:
                out.append(Sysctl(kv[0], kv[1], self.stage_of(sk, s)))
        return out

    def iptables(self, key: str, nd: dict, name: str, fam: int) -> list[Rule]:
        out = []
        for i, r in enumerate(F.table_list(self.errs, f"{key}.{name}", nd.get(name))):
            rk = f"{key}.{name}[{i}]"
            F.unknown(self.errs, rk, r, {"rule", "stage"})
            rule = F.iptables_rule(self.errs, f"{rk}.rule", r.get("rule"), fam)
            if rule:
                out.append(Rule(rule, self.stage_of(rk, r), fam))
        return out

    def nft(self, key: str, nd: dict) -> list[NftCommand]:
        out = []
        for i, r in enumerate(F.table_list(self.errs, f"{key}.nft", nd.get("nft"))):
            rk = f"{key}.nft[{i}]"
            F.unknown(self.errs, rk, r, {"rule", "stage"})
            text = F.nft_command(self.errs, f"{rk}.rule", r.get("rule"))
            if text:
                out.append(NftCommand(text, self.stage_of(rk, r)))
        return out

    def wireguard(self, wk: str, wname: str, w) -> WgInterface | None:
        errs = self.errs
        if not isinstance(w, dict):
            errs.add(wk, "must be a table")
            return None
        F.iface(errs, wk, wname)
        F.unknown(errs, wk, w, {"address", "listen_port", "fwmark", "stage", "peers"} | QUICK_KEYS)
        addrs = F.cidrs(errs, f"{wk}.address", w.get("address"))
        port = w.get("listen_port")
        if port is not None and not (type(port) is int and 0 < port < 65536):
            errs.add(f"{wk}.listen_port", f"{port!r} is not a UDP port")
            port = None
        fw = F.integer(errs, f"{wk}.fwmark", w["fwmark"], 1, 2 ** 32 - 1, "a firewall mark") if "fwmark" in w else None
        peers = []
        for i, p in enumerate(F.table_list(errs, f"{wk}.peers", w.get("peers"))):
            pk = f"{wk}.peers[{i}]"
            F.unknown(errs, pk, p, {"peer", "allowed_ips", "endpoint", "keepalive", "stage"})
            allowed = p.get("allowed_ips", [])
            if not isinstance(allowed, list):
                errs.add(f"{pk}.allowed_ips", "must be a list of networks")
                allowed = []
            allowed = [n for j, a in enumerate(allowed)
                       if (n := F.network(errs, f"{pk}.allowed_ips[{j}]", a)) not in (None, "default")]
            ka = p.get("keepalive")
            if ka is not None and not (type(ka) is int and 0 <= ka < 65536):
                errs.add(f"{pk}.keepalive", f"{ka!r} is not a number of seconds")
                ka = None
            ep = p.get("endpoint")
            if ep is not None and (not isinstance(ep, str) or not ENDPOINT_RE.match(ep)):
                errs.add(f"{pk}.endpoint", f"{ep!r} is neither \"node:iface\" nor \"ip:port\" (\"[ipv6]:port\")")
                ep = None
            peer = p.get("peer")
            if not isinstance(peer, str):
                errs.add(f"{pk}.peer", "required: the name of a node")
                continue
            peers.append(Peer(peer, tuple(allowed), ep, ka, self.stage_of(pk, p)))
        quick, mtu = parse_quick(errs, wk, w, fw)
        if not addrs:
            return None
        wg = WgInterface(wname, addrs, port, self.stage_of(wk, w), tuple(peers), fw, mtu, quick)
        if quick:           # the fwmark it will have: wg-quick picks one for a full tunnel
            from dataclasses import replace
            wg = replace(wg, fwmark=made_items(wg)[3])
        return wg

    def services(self, key: str, nd: dict) -> list[Service]:
        out = []
        for i, s in enumerate(F.table_list(self.errs, f"{key}.services", nd.get("services"))):
            sk = f"{key}.services[{i}]"
            F.unknown(self.errs, sk, s, {"kind", "port"})
            if s.get("kind") not in ("ssh", "tcp"):
                self.errs.add(f"{sk}.kind", f"{s.get('kind')!r} is not \"ssh\" or \"tcp\"")
            elif not (type(s.get("port")) is int and 0 < s["port"] < 65536):
                self.errs.add(f"{sk}.port", f"{s.get('port')!r} is not a TCP port")
            else:
                out.append(Service(s["kind"], s["port"]))
        return out


def _said(item) -> str:
    """A route or rule wg-quick makes, as ``ip`` would show it."""
    if isinstance(item, Route):
        return f"the route {item.dst} dev {item.dev}" + (f" table {item.table}" if item.table else "")
    mark = f"{'not ' if item.invert else ''}fwmark {item.fwmark} " if item.fwmark else ""
    sp = f" suppress_prefixlength {item.suppress_prefixlength}" if item.suppress_prefixlength is not None else ""
    return f"the rule {mark}table {item.table}{sp}"


def parse_links(errs: F.Errors, data: dict, nodes: dict[str, Node]) -> tuple[list[Link], list[int]]:
    links, index = [], []
    for i, ln in enumerate(F.table_list(errs, "links", data.get("links"))):
        lk = f"links[{i}]"
        F.unknown(errs, lk, ln, {"endpoints", "bridge"})
        ends = ln.get("endpoints")
        if not (isinstance(ends, list) and len(ends) == 2 and all(isinstance(e, str) for e in ends)):
            errs.add(f"{lk}.endpoints", "must be two \"node:iface\" strings")
            continue
        parsed = []
        for j, e in enumerate(ends):
            node, _, ifname = e.partition(":")
            if node not in nodes:
                errs.add(f"{lk}.endpoints[{j}]", f"unknown node {node!r}")
            elif not F.IFACE_RE.match(ifname):
                errs.add(f"{lk}.endpoints[{j}]", f"{e!r} needs an interface name: \"node:iface\" (at most 15 characters)")
            parsed.append(Endpoint(node, ifname))
        bridge = ln.get("bridge")
        if bridge is not None and parsed[0].node in nodes and bridge not in nodes[parsed[0].node].bridges:
            errs.add(f"{lk}.bridge", f"node {parsed[0].node!r} has no bridge {bridge!r} (list it in its bridges)")
        links.append(Link(parsed[0], parsed[1], bridge))
        index.append(i)
    return links, index


def parse_checks(errs: F.Errors, data: dict, nodes: dict[str, Node]) -> list[Check]:
    out = []
    for i, c in enumerate(F.table_list(errs, "checks", data.get("checks"))):
        ck = f"checks[{i}]"
        F.unknown(errs, ck, c, {"src", "dst", "tcp", "udp", "family"})
        fam = c.get("family")
        if fam not in (None, 4, 6):
            errs.add(f"{ck}.family", f"{fam!r} is not 4 or 6")
            fam = None
        # dst may also be one address of a node (a VPN address, where the node's first one is not it)
        owner = _address_owner(nodes, c.get("dst"))
        for k in ("src", "dst"):
            if c.get(k) not in nodes and not (k == "dst" and owner):
                errs.add(f"{ck}.{k}", f"unknown node {c.get(k)!r}")
        kind, port = ("tcp", c["tcp"]) if "tcp" in c else ("udp", c["udp"]) if "udp" in c else ("icmp", 0)
        if kind != "icmp" and not (type(port) is int and 0 < port < 65536):
            errs.add(f"{ck}.{kind}", f"{port!r} is not a port")
            continue
        if c.get("src") in (c.get("dst"), owner):
            errs.add(ck, "src and dst are the same node")
            continue
        out.append(Check(str(c.get("src")), str(c.get("dst")), kind, port, fam))
    return out


def _address_owner(nodes: dict[str, Node], value) -> str | None:
    """The node that holds the address ``value`` (None when it is not an address of the lab)."""
    if family(value) is None:
        return None
    for n in nodes.values():
        if any(same_address(c, value) for _, c in n.all_cidrs()):
            return n.name
    return None


def parse_lab(data: dict, path: str, params: dict | None = None) -> Lab:
    from .validate import cross_check
    errs = F.Errors(path)
    F.unknown(errs, "(top)", data, TOP_KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not F.LAB_NAME_RE.match(name):
        errs.add("name", "required: lower-case letters and digits, at most 12 characters")
        name = "invalid"
    stages = parse_stages(errs, data)
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        errs.add("nodes", "required: at least one [nodes.NAME] table")
        raw_nodes = {}
    np = _NodeParser(errs, {s.name for s in stages[1:]})
    nodes = {n: node for n, nd in raw_nodes.items() if (node := np.node(n, nd)) is not None}
    links, link_index = parse_links(errs, data, nodes)
    cross_check(errs, nodes, links, np.route_index, link_index)
    probe = data.get("probe") or {}
    if not isinstance(probe, dict):
        errs.add("probe", 'must be a table like { src = "a", dst = "b" }')
        probe = {}
    F.unknown(errs, "probe", probe, {"src", "dst"})
    for k in ("src", "dst"):
        if k in probe and probe[k] not in nodes:
            errs.add(f"probe.{k}", f"unknown node {probe[k]!r}")
    checks = parse_checks(errs, data, nodes)
    description = F.text(errs, "description", data.get("description"))
    if errs.items:
        from ..errors import LabFileError
        n = len(errs.items)
        raise LabFileError(f"{path}: {n} error{'s' if n > 1 else ''} in the lab file", errs.items)
    return Lab(name, description, path, nodes, tuple(links),
               tuple(stages), probe.get("src"), probe.get("dst"), tuple(checks), dict(params or {}))
