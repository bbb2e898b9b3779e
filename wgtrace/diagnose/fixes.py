"""The commands a verdict proposes, checked against the node's current state before they are shown.

Each builder returns argument lists for one node, in dependency order (an address before the
route that needs it). A fix restores what the lab file declares where it says something, and
otherwise takes the narrowest change that works: a more specific route rather than replacing
a broad one, a peer re-declared with the allowed-ips it already carries plus the missing ones.
"""
from __future__ import annotations

from .. import addr
from ..addr import in_nets
from ..model.commands import endpoint_of, peer_argv
from .context import Context


def _ip(family: int, *argv: str) -> tuple[str, ...]:
    """An ``ip`` command, with ``-6`` where the family needs saying (routes: ``ip -6 route``)."""
    return ("ip", "-6", *argv) if family == 6 else ("ip", *argv)


def _model_route(ctx: Context, node: str, net: str):
    n = ctx.lab.nodes.get(node)
    return next((r for r in (n.routes if n else ()) if r.dst == net), None)


def address_fix(ctx: Context, node: str, iface: str) -> list[tuple[str, ...]]:
    """The addresses the lab file gives ``iface``, when it is down or has none of the probe's family
    now (all it lacks: an interface whose addresses went lost them together); IPv6 turned back on first
    where ``disable_ipv6`` took its IPv6 addresses (the kernel refuses them until then)."""
    link = ctx.f(node).link(iface)
    n = ctx.lab.nodes.get(node)
    want = n.cidrs(iface) if n else ()
    if link is None or not want:
        return []
    have = link.addresses
    if link.up and any(addr.family(a) == ctx.family for a in have):
        return []                 # it has an address of the probe's family: not what went missing
    # (a link taken down loses its IPv6 addresses, not its IPv4 ones: bringing it up needs them back)
    missing = [c for c in want if not any(addr.same_address(a, c) for a in have)]
    cmds = []
    if any(addr.family(c) == 6 for c in missing) and ipv6_disabled(ctx, node, iface):
        cmds.append(("sysctl", "-w", f"net.ipv6.conf.{iface}.disable_ipv6=0"))
    return cmds + [("ip", "addr", "add", c, "dev", iface) for c in missing]


def ipv6_disabled(ctx: Context, node: str, iface: str) -> bool:
    """``net.ipv6.conf.IFACE.disable_ipv6 = 1`` (writing ``all`` sets every interface's)."""
    return ctx.f(node).sysctl.get(f"net.ipv6.conf.{iface}.disable_ipv6") == "1"


def _route_argv(ctx: Context, node: str, net: str, via: str | None, dev: str | None,
                addrs: list[str]) -> tuple[str, ...]:
    """``ip route add`` (or ``replace``, when the kernel has that very prefix already, pointing
    elsewhere); a gateway the kernel would refuse (not on the device's networks) is left out."""
    fam = addr.family(net) or addr.family(via or "") or ctx.family
    if via and dev and addrs is not None and not in_nets(via, addrs) and not addr.is_link_local(via):
        via = None
    exists = any(r.dst == net and r.family == fam for r in ctx.f(node).routes)
    return _ip(fam, "route", "replace" if exists else "add", net, *(("via", via) if via else ()),
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
            mr.dst not in {r.dst for r in ctx.f(node).routes_of(mr.family)}:
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
    plen = -1 if r is None else addr.prefixlen(r.dst, r.family)
    tunnel = [n for n in ctx.tunnel_nets_of(node, final=True) if in_nets(dst, [n])]
    if tunnel and max(addr.prefixlen(n) for n in tunnel) >= plen and ctx.wg_iface(node, dst):
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
    net = addr.default_net(r.family) if r.dst == "default" else r.dst
    argv = _route_argv(ctx, node, net, r.via, dev, addrs)
    if r.dst == "default":
        argv = tuple("default" if a == net else a for a in argv)
        exists = any(x.dst == "default" for x in ctx.f(node).routes_of(r.family))
        verb = argv.index("route") + 1
        argv = argv[:verb] + ("replace" if exists else "add",) + argv[verb + 1:]
    return cmds + [argv]


def neighbor_fix(ctx: Context, node: str, dst: str, via: str) -> list[tuple[str, ...]]:
    """The route that sends ``dst`` to a gateway nobody answers for: taken out when the lab file
    does not declare it (a more specific route someone added), else put back as the lab file has it."""
    f = ctx.f(node)
    fam = addr.family(dst) or 4
    r = addr.longest(dst, [r for r in f.routes_of(fam) if r.via == via], key=lambda r: r.dst)
    if r is None:
        return restore_route(ctx, node, dst)
    n = ctx.lab.nodes.get(node)
    declared = next((m for m in (n.routes if n else ()) if m.dst == r.dst and m.family == fam
                     and ctx.declared(m.stage)), None)
    if declared is None and r.dst != "default":
        return [_ip(fam, "route", "del", r.dst, "via", via)]
    if declared is not None and declared.via and declared.via != via:
        return [_ip(fam, "route", "replace", r.dst, "via", declared.via,
                    *(("dev", declared.dev) if declared.dev else ()))]
    return []


def lost_routes(ctx: Context, node: str, iface: str) -> list[tuple[str, ...]]:
    """The lab file's routes through ``iface`` that are not in the kernel now (a link that went
    down took them with it; bringing it up does not bring them back)."""
    n = ctx.lab.nodes.get(node)
    have = {(r.dst, r.family) for r in ctx.f(node).routes}
    out = []
    n_addr = ctx.f(node).link(iface)
    for r in (n.routes if n else ()):
        if not ctx.declared(r.stage) or (r.dst, r.family) in have or r.table:
            continue
        through = r.dev == iface or (not r.dev and r.via and n_addr and in_nets(r.via, n_addr.addresses))
        if through:
            out.append(_ip(r.family, "route", "add", r.dst, *(("via", r.via) if r.via else ()),
                           *(("dev", r.dev) if r.dev else ())))
    return out


def recreate_wg(ctx: Context, node: str, iface: str) -> list[tuple[str, ...]]:
    """Everything the lab file gives a WireGuard interface that is gone: the interface, its key,
    address and port, its peers (their real keys) and the routes through it."""
    n = ctx.lab.nodes[node]
    w = n.wireguard[iface]
    cmds = [("ip", "link", "add", "dev", iface, "type", "wireguard"),
            *[("ip", "addr", "add", c, "dev", iface) for c in w.addresses],
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
            cmds.append(_ip(r.family, "route", "add", r.dst, *(("via", r.via) if r.via else ()), "dev", iface,
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
            a = addr.normal(a)
            if a not in allowed:
                allowed.append(a)
    # a network inside another one of the same peer adds nothing (0.0.0.0/0 holds them all)
    allowed = [a for a in allowed if not any(a != b and addr.covers(b, a) for b in allowed)]
    endpoint = endpoint or ctx.model_endpoint(node, want_node) or (existing.endpoint if existing else None) \
        or (current.endpoint if current and current.public_key != right else None)
    keepalive = mp.keepalive if mp and mp.keepalive is not None else \
        (existing.keepalive if existing else current.keepalive if current else None)
    remove = current.public_key if current and current.public_key != right else None
    return [peer_argv(wg, right, allowed, endpoint, keepalive, remove)]


def mtu_fix(ctx: Context, node: str, iface: str | None) -> list[tuple[str, ...]]:
    """Back to the usual MTU of such a link (1420 on a tunnel, as wg-quick and wireguard-go set it:
    room for WireGuard's 80 bytes over an IPv6 underlay, 60 over IPv4; 1500 otherwise), when it
    was lowered; a probe larger than that has no network fix."""
    link = ctx.f(node).link(iface)
    if not iface or link is None:
        return []
    want = 1500 - 80 if ctx.is_wg(node, iface) else 1500
    if link.mtu and link.mtu < want:
        return [("ip", "link", "set", "dev", iface, "mtu", str(want))]
    return []


def wg_overhead(ctx: Context, node: str, iface: str) -> int:
    """WireGuard's bytes per packet on ``iface``: 60 when its peers' endpoints are IPv4 (or
    unknown), 80 when any is IPv6 (the larger header is what the MTU must leave room for)."""
    w = next((w for w in ctx.f(node).wg if w.name == iface), None)
    eps = [p.endpoint for p in (w.peers if w else []) if p.endpoint]
    return 80 if any(addr.family(addr.host_of(e)) == 6 for e in eps) else 60
