"""One file's machine as a lab node: its WireGuard interface and what wg-quick does around it.

wg-quick adds a route into the interface for every AllowedIPs network that no route on the
interface already covers (the most specific first); ``Table = N`` puts them in table N, ``off``
adds none. A ``/0`` (either family) is a full tunnel: the interface marks its own datagrams
(FwMark, else 51820), the default goes into that table, and two rules send everything unmarked
there while the main table still answers for what it holds more specifically
(``suppress_prefixlength 0``); IPv4 also gets ``src_valid_mark``. The hooks' rules, sysctls,
routes and policies follow as data. What the files leave out but the network needs is inferred
and said to be: forwarding on a machine others route through, and the NAT a server needs for
full-tunnel clients when its file has none (Nyr's, PiVPN's and Algo's installers set it up
outside the file).
"""
from __future__ import annotations

import ipaddress
import re

from .words import Joined, Said, finding, lab_text, note

FULL_TUNNEL_MARK = 51820
DEFAULT = {4: "default", 6: "::/0"}


def public_address(u, m, fam: int | None) -> str | None:
    for c in u.addresses.get(m.node, {}).get(m.wan, []):
        i = ipaddress.ip_interface(c)
        if fam in (None, i.version):
            return str(i.ip)
    return None


def node_data(m, site, u, members, v6: bool, notes: list[Said], findings: list[Said]) -> dict:
    i = m.f.interface
    routes = list(u.routes.get(m.node, []))
    out: dict = {"description": _description(m, site), "addresses": u.addresses.get(m.node, {})}
    rules, sysctls, fw = [], [], {"iptables": [], "ip6tables": [], "policies": {}, "policies6": {}}
    made, _, _, _ = allowed_routes(m, notes)       # wg-quick makes these in the lab as on the machine
    for a in m.hooks.actions:
        if a.kind in ("iptables", "ip6tables"):
            fw[a.kind].append({"rule": a.value})
            _iface_named(m, a, findings)
        elif a.kind in ("policy", "policy6"):
            fw["policies" if a.kind == "policy" else "policies6"][a.value[0]] = a.value[1]
        elif a.kind == "sysctl":
            sysctls.append({"key": a.value[0], "value": a.value[1]})
        elif a.kind == "rule":
            rules.append(a.value)
        elif a.kind == "route":
            if a.value.get("dev", m.f.iface) not in (m.f.iface, m.wan):
                notes.append(note("route-other-iface", m.f.shown, a.line, phase=a.phase, dev=a.value["dev"]))
            elif _made(a.value, made):
                findings.append(finding("route-made", m.f.shown, a.line, phase=a.phase, dst=a.value["dst"]))
            else:
                routes.append(a.value)
    notes.extend(m.hooks.skipped)
    if m.hooks.undo:
        notes.append(note("hooks-undo", m.f.shown, count=len(m.hooks.undo),
                          lines=", ".join(map(str, sorted(set(m.hooks.undo))))))
    for fam in sorted(forwards(m, members)):
        key = "net.ipv4.ip_forward" if fam == 4 else "net.ipv6.conf.all.forwarding"
        if (fam == 4 or v6) and not any(s["key"] == key for s in sysctls):
            sysctls.append({"key": key, "value": "1"})
            notes.append(note("forwarding-inferred", node=m.node, sysctl=key))
    if site.public:
        _nat(m, members, fw, findings)
    for k in ("routes", "rules", "sysctl"):
        val = {"routes": routes, "rules": rules, "sysctl": sysctls}[k]
        if val:
            out[k] = val
    for k in ("policies", "policies6", "iptables", "ip6tables"):
        if fw[k]:
            out[k] = fw[k]
    wg: dict = {"wg_quick": True, "address": m.addresses[0] if len(m.addresses) == 1 else list(m.addresses)}
    if i.listen_port:
        wg["listen_port"] = i.listen_port
    if i.fwmark:
        wg["fwmark"] = i.fwmark
    if i.mtu:
        wg["mtu"] = i.mtu
    table = i.table or "auto"
    if table != "auto":
        wg["table"] = int(table) if table.isdigit() else table if table in ("off", "main") else "off"
    if i.dns or i.dns_search:
        wg["dns"] = list(i.dns + i.dns_search)
    wg["peers"] = [_peer(m, p, o, u) for p, o in m.peers if o is not None]
    out["wireguard"] = {m.f.iface: wg}
    _file_notes(m, notes)
    return out


def _iface_named(m, a, findings: list[Said]) -> None:
    """A rule written for ``wg0`` in a file that wg-quick names otherwise (renamed, or exported as
    ``node-wg0.conf``) matches nothing."""
    w = a.value.split()
    for opt in ("-i", "-o", "--in-interface", "--out-interface"):
        if opt in w[:-1]:
            dev = w[w.index(opt) + 1].lstrip("!")
            if re.match(r"^wg[0-9]*\+?$", dev) and dev != m.f.iface and not m.f.iface.startswith(dev.rstrip("+")):
                findings.append(finding("rule-iface", m.f.shown, a.line, phase=a.phase, dev=dev, iface=m.f.iface,
                                        rule=a.value))


def _description(m, site) -> Joined:
    i = m.f.interface
    parts = [lab_text("file-node-public" if site.public else "file-node-client",
                      file=m.f.shown.rsplit("/", 1)[-1], iface=m.f.iface)]
    if i.dns or i.dns_search:
        parts.append(lab_text("dns", servers=", ".join(i.dns + i.dns_search)))
    if i.mtu:
        parts.append(lab_text("mtu", mtu=i.mtu))
    return Joined(parts)


def _file_notes(m, notes: list[Said]) -> None:
    i = m.f.interface
    if i.dns or i.dns_search:
        notes.append(note("dns", m.f.shown, i.lines.get("DNS"), servers=", ".join(i.dns + i.dns_search)))
    if i.save_config:
        notes.append(note("save-config", m.f.shown, i.lines.get("SaveConfig")))
    notes.extend(m.f.notes)


def _peer(m, p, o, u) -> dict:
    seen, nets = set(), []
    for n, _ in p.allowed_ips:
        if n not in seen:
            seen.add(n)
            nets.append(n)
    out: dict = {"peer": o.node, "allowed_ips": nets}
    if p.endpoint:
        out["endpoint"] = _endpoint(p.endpoint, o, u)
    if p.keepalive:
        out["keepalive"] = p.keepalive
    return out


def _endpoint(endpoint: tuple[str, int], o, u) -> str:
    """The node and interface when that says exactly the same (its first IPv4 address, the port it
    listens on); otherwise the address and port, a name replaced by the node's address."""
    host, port = endpoint
    try:
        addr = str(ipaddress.ip_address(host))
    except ValueError:
        addr = public_address(u, o, 4) or public_address(u, o, None) or host
    if addr == public_address(u, o, 4) and port == o.f.interface.listen_port:
        return f"{o.node}:{o.wan}"
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _made(route: dict, made: list[dict]) -> bool:
    """Is this hook route one wg-quick has already made from AllowedIPs?"""
    key = lambda r: (r["dst"], r.get("dev"), r.get("table"), r.get("via"))
    return any(key(route) == key(x) for x in made)


def allowed_routes(m, notes: list[Said]) -> tuple[list[dict], list[dict], list[dict], int | None]:
    """(routes, rules, sysctls, fwmark) as wg-quick makes them from every peer's AllowedIPs."""
    i, dev = m.f.interface, m.f.iface
    table = i.table or "auto"
    if table == "off":
        return [], [], [], i.fwmark
    if table not in ("auto", "main") and not table.isdigit():
        notes.append(note("table-name", m.f.shown, i.lines.get("Table"), table=table))
        return [], [], [], i.fwmark
    nets = sorted({ipaddress.ip_network(n) for p in m.f.peers for n, _ in p.allowed_ips},
                  key=lambda n: (-n.prefixlen, n.version, n))
    covered = [ipaddress.ip_interface(a).network for a in m.addresses]
    routes, rules, sysctls, mark = [], [], [], i.fwmark
    for n in nets:
        dst = DEFAULT[n.version] if n.prefixlen == 0 else str(n)
        if table.isdigit():
            routes.append({"dst": dst, "dev": dev, "table": int(table)})
        elif n.prefixlen == 0 and table == "auto":
            mark = i.fwmark or FULL_TUNNEL_MARK
            routes.append({"dst": dst, "dev": dev, "table": mark})
            fam = {"family": 6} if n.version == 6 else {}
            rules += [{"fwmark": mark, "not": True, "table": mark, **fam},
                      {"table": "main", "suppress_prefixlength": 0, **fam}]
            if n.version == 4:
                sysctls.append({"key": "net.ipv4.conf.all.src_valid_mark", "value": "1"})
        elif not any(c.version == n.version and n.subnet_of(c) for c in covered):
            routes.append({"dst": dst, "dev": dev})
            covered.append(n)
    return routes, rules, sysctls, mark


def forwards(m, members) -> set[int]:
    """The families this machine passes on for others: a peer routes more than its own address
    to it, or it joins two peers."""
    own = {ipaddress.ip_interface(a).ip for a in m.addresses}
    fams: set[int] = set()
    for o in members:
        p = o.peer_for(m) if o is not m else None
        for n in (ipaddress.ip_network(x) for x, _ in (p.allowed_ips if p else ())):
            if not (n.num_addresses == 1 and n.network_address in own):
                fams.add(n.version)
    if sum(1 for _, o in m.peers if o is not None) >= 2:
        fams |= {ipaddress.ip_interface(a).version for a in m.addresses}
    return fams


def has_nat(rules: list[dict]) -> bool:
    return any("nat" in w and "POSTROUTING" in w and ("MASQUERADE" in w or "SNAT" in w)
               for w in (r["rule"].split() for r in rules))


def full_tunnel_families(m, members) -> set[int]:
    """Families for which some peer sends everything (a /0) through this machine."""
    return {ipaddress.ip_network(n).version for o in members if o is not m and (p := o.peer_for(m))
            for n, _ in p.allowed_ips if ipaddress.ip_network(n).prefixlen == 0}


def _nat(m, members, fw: dict, findings: list[Said]) -> None:
    for fam in sorted(full_tunnel_families(m, members)):
        kind = "iptables" if fam == 4 else "ip6tables"
        nets = sorted({str(i.network) for i in m.family_addresses(fam)})
        if has_nat(fw[kind]) or not nets:
            continue
        for net in nets:
            rule = f"-t nat -A POSTROUTING -s {net} -o {m.wan} -j MASQUERADE"
            fw[kind].append({"rule": rule})
            findings.append(finding("nat-inferred", m.f.shown, node=m.node, program=kind, rule=rule))
