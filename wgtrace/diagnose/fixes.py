"""The commands a verdict proposes, checked against the node's current state before they are shown.

Each builder returns argument lists for one node, in dependency order (an address before the
route that needs it). A fix restores what the lab file declares where it says something, and
otherwise takes the narrowest change that works: a more specific route rather than replacing
a broad one, a peer re-declared with the allowed-ips it already carries plus the missing ones.
"""
from __future__ import annotations

import ipaddress

from ..model.commands import peer_argv
from .context import Context, in_nets


def _model_route(ctx: Context, node: str, net: str):
    n = ctx.lab.nodes.get(node)
    return next((r for r in (n.routes if n else ()) if r.dst == net), None)


def address_fix(ctx: Context, node: str, iface: str) -> list[tuple[str, ...]]:
    """The address the lab file gives ``iface``, when the interface has none now."""
    link = ctx.f(node).link(iface)
    n = ctx.lab.nodes.get(node)
    want = (n.wireguard[iface].address if n and iface in n.wireguard else n.addresses.get(iface)) if n else None
    if link is None or link.addresses or not want:
        return []
    return [("ip", "addr", "add", want, "dev", iface)]


def _route_argv(ctx: Context, node: str, net: str, via: str | None, dev: str | None,
                addrs: list[str]) -> tuple[str, ...]:
    """``ip route add`` (or ``replace``, when the kernel has that very prefix already, pointing
    elsewhere); a gateway the kernel would refuse (not on the device's networks) is left out."""
    if via and dev and addrs is not None and not in_nets(via, addrs):
        via = None
    exists = any(r.dst == net for r in ctx.f(node).routes)
    return ("ip", "route", "replace" if exists else "add", net, *(("via", via) if via else ()),
            *(("dev", dev) if dev else ()))


def route_fix(ctx: Context, node: str, dst: str) -> list[tuple[str, ...]]:
    """A route for ``dst``'s network into the node's WireGuard interface (the one whose peers
    carry it), after what that interface itself needs (up, its address). A broader route that
    matches now stays: the new one is more specific, and other traffic may need the broad one."""
    wg = ctx.wg_iface(node, dst)
    link = ctx.f(node).link(wg)
    if not wg or link is None:
        return []
    net = ctx.covering_net(dst)
    # the lab file's own route into this interface, when the kernel lacks it: it carries the other
    # networks behind the tunnel too, where a narrower one would mend this address's only
    mr = ctx.model_route(node, dst)
    if mr is not None and mr.dev == wg and mr.dst != "default" and \
            mr.dst not in {r.dst for r in ctx.f(node).routes}:
        net = mr.dst
    cmds = []
    if not link.up:
        cmds.append(("ip", "link", "set", wg, "up"))
    cmds += address_fix(ctx, node, wg)
    addrs = link.addresses or [c[3] for c in cmds if c[:3] == ("ip", "addr", "add")]
    declared = _model_route(ctx, node, net)
    via = declared.via if declared and declared.dev in (None, wg) else None
    cmds.append(_route_argv(ctx, node, net, via, wg, addrs))
    return cmds


def restore_route(ctx: Context, node: str, dst: str) -> list[tuple[str, ...]]:
    """The route ``node`` should have for ``dst``: into its tunnel when a tunnel network is the
    most specific match, else the lab file's own route for it."""
    r = ctx.model_route(node, dst, final=True)
    plen = -1 if r is None else 0 if r.dst == "default" else int(r.dst.split("/")[1])
    tunnel = [n for n in ctx.tunnel_nets_of(node, final=True) if in_nets(dst, [n])]
    if tunnel and max(int(n.split("/")[1]) for n in tunnel) >= plen and ctx.wg_iface(node, dst):
        return route_fix(ctx, node, dst)
    if r is None:
        return []
    dev = r.dev
    link = ctx.f(node).link(dev) if dev else None
    cmds = []
    if link is not None and not link.up:
        cmds.append(("ip", "link", "set", dev, "up"))
    if link is not None:
        cmds += address_fix(ctx, node, dev)
    addrs = None
    if dev and link is not None:
        addrs = link.addresses or [c[3] for c in cmds if c[:3] == ("ip", "addr", "add")]
    net = "0.0.0.0/0" if r.dst == "default" else r.dst
    argv = _route_argv(ctx, node, net, r.via, dev, addrs)
    if r.dst == "default":
        argv = tuple("default" if a == "0.0.0.0/0" else a for a in argv)
        exists = any(x.dst == "default" for x in ctx.f(node).routes)
        argv = argv[:2] + ("replace" if exists else "add",) + argv[3:]
    return cmds + [argv]


def neighbor_fix(ctx: Context, node: str, dst: str, via: str) -> list[tuple[str, ...]]:
    """The route that sends ``dst`` to a gateway nobody answers for: taken out when the lab file
    does not declare it (a more specific route someone added), else put back as the lab file has it."""
    f = ctx.f(node)
    used = None
    for r in f.routes:
        net = "0.0.0.0/0" if r.dst == "default" else r.dst
        if r.via == via and in_nets(dst, [net]) and (used is None or int(net.split("/")[1]) > int(used[1].split("/")[1])):
            used = (r, net)
    if used is None:
        return restore_route(ctx, node, dst)
    r, net = used
    n = ctx.lab.nodes.get(node)
    declared = next((m for m in (n.routes if n else ()) if m.dst == r.dst and ctx.declared(m.stage)), None)
    if declared is None and r.dst != "default":
        return [("ip", "route", "del", r.dst, "via", via)]
    if declared is not None and declared.via and declared.via != via:
        return [("ip", "route", "replace", r.dst, "via", declared.via,
                 *(("dev", declared.dev) if declared.dev else ()))]
    return []


def lost_routes(ctx: Context, node: str, iface: str) -> list[tuple[str, ...]]:
    """The lab file's routes through ``iface`` that are not in the kernel now (a link that went
    down took them with it; bringing it up does not bring them back)."""
    n = ctx.lab.nodes.get(node)
    have = {r.dst for r in ctx.f(node).routes}
    out = []
    n_addr = ctx.f(node).link(iface)
    for r in (n.routes if n else ()):
        if not ctx.declared(r.stage) or r.dst in have:
            continue
        through = r.dev == iface or (not r.dev and r.via and n_addr and in_nets(r.via, n_addr.addresses))
        if through:
            out.append(("ip", "route", "add", r.dst, *(("via", r.via) if r.via else ()),
                        *(("dev", r.dev) if r.dev else ())))
    return out


def recreate_wg(ctx: Context, node: str, iface: str) -> list[tuple[str, ...]]:
    """Everything the lab file gives a WireGuard interface that is gone: the interface, its key,
    address and port, its peers (their real keys) and the routes through it."""
    from ..model.commands import endpoint_of
    n = ctx.lab.nodes[node]
    w = n.wireguard[iface]
    cmds = [("ip", "link", "add", "dev", iface, "type", "wireguard"), ("ip", "addr", "add", w.address, "dev", iface),
            ("wg", "set", iface, "private-key", "./private",
             *(("listen-port", str(w.listen_port)) if w.listen_port else ())),
            ("ip", "link", "set", iface, "up")]
    for peer in dict.fromkeys(p.peer for p in w.peers if ctx.declared(p.stage)):
        mp = ctx.model_peer(node, peer)
        key = ctx.key_of(peer)
        if key and mp:
            cmds.append(peer_argv(iface, key, mp.allowed_ips,
                                  endpoint_of(ctx.lab, mp.endpoint) if mp.endpoint else None, mp.keepalive))
    for r in n.routes:
        if ctx.declared(r.stage) and r.dev == iface:
            cmds.append(("ip", "route", "add", r.dst, *(("via", r.via) if r.via else ()), "dev", iface,
                         *(("table", str(r.table)) if r.table else ())))
    for sc in n.sysctl:              # settings of the interface itself went with it
        if ctx.declared(sc.stage) and f".{iface}." in sc.key:
            cmds.append(("sysctl", "-w", f"{sc.key}={sc.value}"))
    return cmds


def far_end(ctx: Context, node: str, iface: str | None) -> tuple[str, str] | None:
    """The other end of the cable on ``node``'s ``iface`` (None for a bridge: many ends)."""
    for link in ctx.lab.links:
        for a, b in ((link.a, link.b), (link.b, link.a)):
            if a.node == node and a.iface == iface:
                return b.node, b.iface
    return None


def peer_fix(ctx: Context, node: str, wg: str, current, want_node: str | None,
             need: list[str] = (), endpoint: str | None = None) -> list[tuple[str, ...]]:
    """Declare ``want_node``'s peer on ``node`` with its real key: the allowed-ips it (or the
    wrong entry standing in for it) carries now, the lab file's, and ``need``; the lab file's
    endpoint and keepalive; the wrong entry removed in the same command."""
    right = ctx.key_of(want_node) if want_node else None
    if not right:
        return []
    mp = ctx.model_peer(node, want_node)
    existing = next((p for p in ctx.peers(node) if p.public_key == right), None)
    allowed: list[str] = []
    for src in (existing.allowed_ips if existing else [], current.allowed_ips if current else [],
                list(mp.allowed_ips) if mp else [], list(need)):
        for a in src:
            a = str(ipaddress.IPv4Network(a, strict=False))
            if a not in allowed:
                allowed.append(a)
    # a network inside another one of the same peer adds nothing (0.0.0.0/0 holds them all)
    nets = [ipaddress.IPv4Network(a) for a in allowed]
    allowed = [a for a, n in zip(allowed, nets) if not any(n != m and n.subnet_of(m) for m in nets)]
    endpoint = endpoint or ctx.model_endpoint(node, want_node) or (existing.endpoint if existing else None) \
        or (current.endpoint if current and current.public_key != right else None)
    keepalive = mp.keepalive if mp and mp.keepalive is not None else \
        (existing.keepalive if existing else current.keepalive if current else None)
    remove = current.public_key if current and current.public_key != right else None
    return [peer_argv(wg, right, allowed, endpoint, keepalive, remove)]


def mtu_fix(ctx: Context, node: str, iface: str | None) -> list[tuple[str, ...]]:
    """Back to the usual MTU of such a link (1420 for WireGuard over IPv4, 1500 otherwise), when
    it was lowered; a probe larger than that has no network fix."""
    link = ctx.f(node).link(iface)
    if not iface or link is None:
        return []
    want = 1420 if ctx.is_wg(node, iface) else 1500
    if link.mtu and link.mtu < want:
        return [("ip", "link", "set", "dev", iface, "mtu", str(want))]
    return []
