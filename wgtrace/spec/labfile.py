"""Load a lab file (TOML) into the model, in two steps: parse, then validate.

Every problem found is collected with the file and the key it concerns and raised
together as one ``LabFileError``, so a user fixes a file in one pass.
"""
from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import LabFileError
from . import data_dir
from .model import (Endpoint, Lab, Link, Node, Peer, Route, Rule, Service, Stage,
                    Sysctl, WgInterface)

LABS_DIR = data_dir("labs")
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,13}$")
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")   # no '-': it separates lab and node in names
IFACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
SYSCTL_RE = re.compile(r"^net\.[A-Za-z0-9_.-]+$")
NODE_KEYS = {"description", "addresses", "bridges", "routes", "sysctl", "policies",
             "iptables", "wireguard", "services"}


def find_lab(name_or_path: str) -> Path:
    """A lab given as a name in labs/ (``seed``) or as a path to a .toml file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or "/" in name_or_path:
        return p
    return LABS_DIR / f"{name_or_path}.toml"


def available_labs() -> list[str]:
    return sorted(p.stem for p in LABS_DIR.glob("*.toml") if not p.name.endswith(".faults.toml"))


def load_lab(name_or_path: str, rename: str | None = None) -> Lab:
    """Load and check a lab file; ``rename`` runs it under another name (side by side)."""
    path = find_lab(name_or_path)
    if not path.is_file():
        known = ", ".join(available_labs()) or "none"
        raise LabFileError(f"unknown lab {name_or_path!r} (known labs: {known})", [])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise LabFileError(f"{path}: not valid TOML: {e}", [f"{path}: {e}"]) from None
    if rename is not None:
        data = {**data, "name": rename}
    return parse_lab(data, str(path))


class _Errors:
    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, key: str, what: str) -> None:
        self.items.append(f"{self.path}: {key}: {what}")


def _cidr(errs: _Errors, key: str, value: Any) -> str | None:
    try:
        ipaddress.IPv4Interface(str(value))
        if "/" not in str(value):
            raise ValueError
        return str(value)
    except ValueError:
        errs.add(key, f"{value!r} is not an IPv4 address with a prefix length (like 10.0.0.1/24)")
        return None


def _network(errs: _Errors, key: str, value: Any) -> str | None:
    if value == "default":
        return "default"
    try:
        return str(ipaddress.IPv4Network(str(value), strict=True))
    except ValueError:
        errs.add(key, f"{value!r} is not an IPv4 network (like 10.10.13.0/24) or \"default\"")
        return None


def _ip(errs: _Errors, key: str, value: Any) -> str | None:
    try:
        return str(ipaddress.IPv4Address(str(value)))
    except ValueError:
        errs.add(key, f"{value!r} is not an IPv4 address")
        return None


def _table_list(errs: _Errors, key: str, value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        errs.add(key, "must be a list of tables")
        return []
    return value


def _unknown(errs: _Errors, key: str, d: dict, allowed: set[str]) -> None:
    for k in d:
        if k not in allowed:
            errs.add(f"{key}.{k}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def parse_lab(data: dict, path: str) -> Lab:
    errs = _Errors(path)
    _unknown(errs, "(top)", data, {"name", "description", "probe", "stages", "nodes", "links"})
    name = data.get("name")
    if not isinstance(name, str) or not LAB_NAME_RE.match(name):
        errs.add("name", "required: lower-case letters and digits, at most 12 characters")
        name = "invalid"

    stages = [Stage("base", "Machines, LANs and NAT routers; no VPN yet")]
    for i, st in enumerate(_table_list(errs, "stages", data.get("stages"))):
        key = f"stages[{i}]"
        _unknown(errs, key, st, {"name", "title"})
        sname, title = st.get("name"), st.get("title", "")
        if not isinstance(sname, str) or not re.match(r"^[a-z][a-z0-9-]*$", sname):
            errs.add(f"{key}.name", "required: lower-case letters, digits and '-'")
            continue
        if sname == "base" or any(s.name == sname for s in stages):
            errs.add(f"{key}.name", f"stage {sname!r} is defined twice")
            continue
        stages.append(Stage(sname, str(title)))
    stage_names = {s.name for s in stages[1:]}

    def stage_of(key: str, d: dict) -> str | None:
        st = d.get("stage")
        if st is not None and st not in stage_names:
            errs.add(f"{key}.stage", f"unknown stage {st!r}")
        return st

    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        errs.add("nodes", "required: at least one [nodes.NAME] table")
        raw_nodes = {}
    nodes: dict[str, Node] = {}
    route_index: dict[str, list[int]] = {}   # node -> lab-file index of each route kept
    for nname, nd in raw_nodes.items():
        key = f"nodes.{nname}"
        if not NAME_RE.match(nname):
            errs.add(key, "node names are lower-case letters, digits and '-', at most 14 characters")
        if not isinstance(nd, dict):
            errs.add(key, "must be a table")
            continue
        _unknown(errs, key, nd, NODE_KEYS)
        addresses = {}
        for iface, cidr in (nd.get("addresses") or {}).items():
            if not IFACE_RE.match(iface):
                errs.add(f"{key}.addresses.{iface}", "not a valid interface name (at most 15 characters)")
            c = _cidr(errs, f"{key}.addresses.{iface}", cidr)
            if c:
                addresses[iface] = c
        routes = []
        for i, r in enumerate(_table_list(errs, f"{key}.routes", nd.get("routes"))):
            rk = f"{key}.routes[{i}]"
            _unknown(errs, rk, r, {"dst", "via", "dev", "stage"})
            dst = _network(errs, f"{rk}.dst", r.get("dst"))
            via = _ip(errs, f"{rk}.via", r["via"]) if "via" in r else None
            if "via" not in r and "dev" not in r:
                errs.add(rk, "needs via, dev or both")
            if dst:
                routes.append(Route(dst, via, r.get("dev"), stage_of(rk, r)))
                route_index.setdefault(nname, []).append(i)
        sysctls = []
        for i, s in enumerate(_table_list(errs, f"{key}.sysctl", nd.get("sysctl"))):
            sk = f"{key}.sysctl[{i}]"
            _unknown(errs, sk, s, {"key", "value", "stage"})
            if not isinstance(s.get("key"), str) or not SYSCTL_RE.match(s["key"]):
                errs.add(f"{sk}.key", "required: a net.* sysctl (only the node's own network sysctls can be set)")
                continue
            sysctls.append(Sysctl(s["key"], str(s.get("value", "")), stage_of(sk, s)))
        policies = {}
        for chain, pol in (nd.get("policies") or {}).items():
            if chain not in ("INPUT", "FORWARD", "OUTPUT"):
                errs.add(f"{key}.policies.{chain}", "only INPUT, FORWARD and OUTPUT have policies")
            elif pol not in ("ACCEPT", "DROP"):
                errs.add(f"{key}.policies.{chain}", f"{pol!r} is not ACCEPT or DROP")
            else:
                policies[chain] = pol
        rules = []
        for i, r in enumerate(_table_list(errs, f"{key}.iptables", nd.get("iptables"))):
            rk = f"{key}.iptables[{i}]"
            _unknown(errs, rk, r, {"rule", "stage"})
            if not isinstance(r.get("rule"), str) or not re.search(r"(^|\s)-[AI]\s", r["rule"]):
                errs.add(f"{rk}.rule", "required: an iptables rule with -A or -I, like \"-t nat -A POSTROUTING -o wan -j MASQUERADE\"")
                continue
            rules.append(Rule(r["rule"], stage_of(rk, r)))
        wgs = {}
        for wname, w in (nd.get("wireguard") or {}).items():
            wk = f"{key}.wireguard.{wname}"
            if not isinstance(w, dict):
                errs.add(wk, "must be a table")
                continue
            _unknown(errs, wk, w, {"address", "listen_port", "stage", "peers"})
            addr = _cidr(errs, f"{wk}.address", w.get("address"))
            port = w.get("listen_port")
            if port is not None and not (isinstance(port, int) and 0 < port < 65536):
                errs.add(f"{wk}.listen_port", f"{port!r} is not a UDP port")
                port = None
            peers = []
            for i, p in enumerate(_table_list(errs, f"{wk}.peers", w.get("peers"))):
                pk = f"{wk}.peers[{i}]"
                _unknown(errs, pk, p, {"peer", "allowed_ips", "endpoint", "keepalive", "stage"})
                allowed = p.get("allowed_ips", [])
                if not isinstance(allowed, list):
                    errs.add(f"{pk}.allowed_ips", "must be a list of networks")
                    allowed = []
                allowed = [a for j, a in enumerate(allowed)
                           if _network(errs, f"{pk}.allowed_ips[{j}]", a) not in (None, "default")]
                ka = p.get("keepalive")
                if ka is not None and not (isinstance(ka, int) and 0 <= ka < 65536):
                    errs.add(f"{pk}.keepalive", f"{ka!r} is not a number of seconds")
                peers.append(Peer(str(p.get("peer")), tuple(allowed), p.get("endpoint"), ka,
                                  stage_of(pk, p)))
            if addr:
                wgs[wname] = WgInterface(wname, addr, port, stage_of(wk, w), tuple(peers))
        services = []
        for i, s in enumerate(_table_list(errs, f"{key}.services", nd.get("services"))):
            sk = f"{key}.services[{i}]"
            _unknown(errs, sk, s, {"kind", "port"})
            if s.get("kind") not in ("ssh", "tcp"):
                errs.add(f"{sk}.kind", f"{s.get('kind')!r} is not \"ssh\" or \"tcp\"")
            elif not (isinstance(s.get("port"), int) and 0 < s["port"] < 65536):
                errs.add(f"{sk}.port", f"{s.get('port')!r} is not a TCP port")
            else:
                services.append(Service(s["kind"], s["port"]))
        bridges = nd.get("bridges") or []
        nodes[nname] = Node(nname, str(nd.get("description", "")), addresses, tuple(bridges),
                            tuple(routes), tuple(sysctls), policies, tuple(rules), wgs,
                            tuple(services))

    links = []
    link_index: list[int] = []                 # lab-file index of each link kept
    for i, ln in enumerate(_table_list(errs, "links", data.get("links"))):
        lk = f"links[{i}]"
        _unknown(errs, lk, ln, {"endpoints", "bridge"})
        ends = ln.get("endpoints")
        if not (isinstance(ends, list) and len(ends) == 2 and all(isinstance(e, str) for e in ends)):
            errs.add(f"{lk}.endpoints", "must be two \"node:iface\" strings")
            continue
        parsed = []
        for j, e in enumerate(ends):
            node, _, iface = e.partition(":")
            if node not in nodes:
                errs.add(f"{lk}.endpoints[{j}]", f"unknown node {node!r}")
            elif not IFACE_RE.match(iface):
                errs.add(f"{lk}.endpoints[{j}]", f"{e!r} needs an interface name: \"node:iface\" (at most 15 characters)")
            parsed.append(Endpoint(node, iface))
        bridge = ln.get("bridge")
        if bridge is not None and parsed[0].node in nodes and bridge not in nodes[parsed[0].node].bridges:
            errs.add(f"{lk}.bridge", f"node {parsed[0].node!r} has no bridge {bridge!r} (list it in its bridges)")
        links.append(Link(parsed[0], parsed[1], bridge))
        link_index.append(i)

    _cross_check(errs, nodes, links, route_index, link_index)
    probe = data.get("probe") or {}
    for k in ("src", "dst"):
        if k in probe and probe[k] not in nodes:
            errs.add(f"probe.{k}", f"unknown node {probe[k]!r}")
    if errs.items:
        n = len(errs.items)
        raise LabFileError(f"{path}: {n} error{'s' if n > 1 else ''} in the lab file", errs.items)
    return Lab(name, str(data.get("description", "")), path, nodes, tuple(links), tuple(stages),
               probe.get("src"), probe.get("dst"))


def _cross_check(errs: _Errors, nodes: dict[str, Node], links: list[Link],
                 route_index: dict[str, list[int]], link_index: list[int]) -> None:
    """Checks that need the whole lab: references between nodes and interfaces."""
    ends: dict[str, set[str]] = {n: set() for n in nodes}
    for i, ln in zip(link_index, links):     # i: the link's index in the file
        for e in (ln.a, ln.b):
            if e.node in ends:
                if e.iface in ends[e.node]:
                    errs.add(f"links[{i}]", f"interface {e.node}:{e.iface} is used by two links")
                ends[e.node].add(e.iface)
    for n in nodes.values():
        known = ends[n.name] | set(n.bridges) | set(n.wireguard)
        for iface in n.addresses:
            if iface not in known:
                errs.add(f"nodes.{n.name}.addresses.{iface}",
                         "no such interface on this node (not in any link, bridge or wireguard)")
        for i, r in zip(route_index.get(n.name, []), n.routes):
            if r.dev and r.dev not in known:
                errs.add(f"nodes.{n.name}.routes[{i}].dev", f"no interface {r.dev!r} on node {n.name!r}")
        for wname, w in n.wireguard.items():
            for i, p in enumerate(w.peers):
                pk = f"nodes.{n.name}.wireguard.{wname}.peers[{i}]"
                if p.peer not in nodes:
                    errs.add(f"{pk}.peer", f"unknown node {p.peer!r}")
                elif not nodes[p.peer].wireguard:
                    errs.add(f"{pk}.peer", f"node {p.peer!r} has no wireguard interface")
                if p.endpoint:
                    node, _, rest = p.endpoint.partition(":")
                    if node in nodes:
                        if nodes[node].address_of(rest) is None:
                            errs.add(f"{pk}.endpoint", f"node {node!r} has no address on {rest!r}")
                    else:
                        try:
                            ipaddress.IPv4Address(node)
                            int(rest)
                        except ValueError:
                            errs.add(f"{pk}.endpoint", f"{p.endpoint!r} is neither \"node:iface\" nor \"ip:port\"")
