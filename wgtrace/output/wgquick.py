"""wg-quick files: a node's WireGuard interface as it is now, to keep or to reuse on a real machine.

The [Interface] and [Peer] sections come from the kernel's state (with the MTU, Table, FwMark
and DNS the lab file gives a wg-quick interface); the node's sysctls, its routes into the
interface that wg-quick would not make from AllowedIPs, and its iptables rules, from the lab
file up to the lab's current stage (stage 0 included), become PostUp lines, each rule with its
PostDown undo. wg-quick makes the full tunnel's fwmark, table, rules and src_valid_mark itself,
so those need no line. The filter chains' policies are the machine's, not the tunnel's: no line
sets them. ``lab import`` reads such a file back as the same interface.
"""
from __future__ import annotations

import ipaddress
import shlex

from ..model.lab import Node, WgInterface
from ..model.wgquick import FULL_TUNNEL_MARK
from ..nodes.wgstate import WgIface


def wg_quick(node: Node, w: WgIface, private: str, names: dict[str, str], upto: set[str | None]) -> str:
    """``names``: public key -> node name; ``upto``: the stages applied so far (None: stage 0)."""
    model = node.wireguard.get(w.name)
    address = ", ".join(model.addresses) if model else ""
    lines = [f"# {node.name}: {node.description}", "[Interface]", f"Address = {address}", f"PrivateKey = {private}"]
    if model is None or model.listen_port:          # a port the kernel picked is no setting to keep
        lines.append(f"ListenPort = {w.listen_port}")
    if model and model.mtu:
        lines.append(f"MTU = {model.mtu}")
    if model and model.quick:
        q = model.quick
        if q.fwmark:
            lines.append(f"FwMark = {q.fwmark}")
        if q.table != "auto":
            lines.append(f"Table = {q.table}")
        if q.dns:
            lines.append(f"DNS = {', '.join(q.dns)}")
    elif w.fwmark and not (_full_tunnel(w) and w.fwmark == FULL_TUNNEL_MARK):     # wg-quick's own choice
        lines.append(f"FwMark = {w.fwmark}")
    lines += _post_up(node, w, upto)
    declared = {p.peer for p in model.peers if p.endpoint} if model else set()
    for p in w.peers:
        who = names.get(p.public_key, "unknown")
        lines += ["", f"[Peer]  # {who}", f"PublicKey = {p.public_key}", f"AllowedIPs = {', '.join(p.allowed_ips)}"]
        # an endpoint learnt from a NATed peer is only valid while that NAT mapping lives
        if p.endpoint and who in declared:
            lines.append(f"Endpoint = {p.endpoint}")
        if p.keepalive:
            lines.append(f"PersistentKeepalive = {p.keepalive}")
    return "\n".join(lines) + "\n"


def _full_tunnel(w: WgIface) -> bool:
    return any(ipaddress.ip_network(n).prefixlen == 0 for p in w.peers for n in p.allowed_ips)


def _post_up(node: Node, w: WgIface, upto: set[str | None]) -> list[str]:
    lines = []
    full = _full_tunnel(w)
    for s in node.sysctl:
        if s.stage in upto and not s.made_by and not (full and s.key == "net.ipv4.conf.all.src_valid_mark"):
            lines.append(f"PostUp = sysctl -w {s.key}={s.value}")
    made = _made_routes(node.wireguard.get(w.name), w)
    for r in node.routes:
        # a gateway into a WireGuard interface changes nothing (it has no link layer): a route that
        # wg-quick makes anyway, gateway or not, needs no line (an `ip route add` would fail: it exists)
        if r.stage in upto and r.dev == w.name and not r.made_by and (r.dst, r.table, r.family) not in made:
            six = "-6 " if r.family == 6 else ""
            via = f" via {r.via}" if r.via else ""
            table = f" table {r.table}" if r.table else ""
            lines.append(f"PostUp = ip {six}route add {r.dst}{via} dev {w.name}{table}")
    for r in node.iptables:
        if r.stage in upto:
            args = list(r.args)
            lines.append(f"PostUp = {r.program} {shlex.join(args)}")
            i = next((k for k, a in enumerate(args) if a in ("-A", "-I")), None)
            if i is not None:
                undo = args[:i] + ["-D"] + args[i + 1:]
                if args[i] == "-I" and len(undo) > i + 2 and undo[i + 2].isdigit():
                    del undo[i + 2]            # "-I CHAIN 1": -D takes no position with a rule
                lines.append(f"PostDown = {r.program} {shlex.join(undo)}")
    return lines


def _made_routes(model: WgInterface | None, w: WgIface) -> set[tuple]:
    """(dst, table, family) of the routes wg-quick makes from the interface's AllowedIPs as they are."""
    from dataclasses import replace
    from ..model.lab import Peer, WgQuick
    from ..model.wgquick import made_items
    if model is None:
        return set()
    quick = model.quick or WgQuick(fwmark=model.fwmark)
    now = replace(model, peers=tuple(Peer(str(i), tuple(p.allowed_ips), stage=model.stage) for i, p in enumerate(w.peers)),
                  quick=quick, fwmark=quick.fwmark)
    return {(r.dst, r.table, r.family) for r in made_items(now)[0]}
