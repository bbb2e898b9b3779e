"""Checks over the whole path that start at the source: a refusal, a send error, nothing sent,
an MTU error, and a node that sent a tunnel-bound packet out of the wrong interface."""
from __future__ import annotations

from ..model.commands import sshd_argv
from . import fixes
from .context import Context, in_nets
from .verdict import Stop, Verdict

UNANSWERED = ("INCOMPLETE", "FAILED")


def _drops(ctx: Context, node: str, chain: str, table: str = "filter"):
    return [(c, n) for c, n in ctx.f(node).hits if c.table == table and c.chain == chain and c.drops]


def refused(ctx: Context) -> Verdict | None:
    """The answer was a TCP reset or an ICMP port unreachable: who sent it decides the cause."""
    res = ctx.res
    if not res.refused or res.reachable:
        return None
    answers = [h for h in res.hops if (h.is_reset and h.role == "reply") or (h.role == "error" and h.port_unreachable)]
    made = next((h for h in answers if h.dir == "out"), answers[0] if answers else None)
    back = next(h for h in reversed(answers) if h.node == res.src)
    dst_node = ctx.owner(res.probe["dst_ip"]) or (made.node if made else res.src)
    origin = made.node if made else dst_node
    arrive = next((h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "in"
                   and h.node == origin), None)
    iface = arrive.iface if arrive else None
    params = {"node": origin, "iface": iface, "port": res.probe.get("port"), "dst": res.probe["dst_ip"]}
    for chain, cause in (("FORWARD", "forward-filtered"), ("INPUT", "input-filtered")):
        rejects = _drops(ctx, origin, chain)
        if rejects:
            c, n = rejects[0]
            v = Verdict(cause, Stop(origin, iface, "request"), params={**params, "rule": c.rule, "out": "?",
                                                                    "src": res.probe.get("src_ip")})
            v.add(origin, "iptables", "rule-matched", chain=chain, rule=c.rule, n=n)
            v.add(res.src, "capture", "refusal-back", summary=back.summary)
            return v.fixes(origin, c.undo())
    v = Verdict("port-closed", Stop(origin, iface, "request"), params=params)
    v.add(res.src, "capture", "refusal-back", summary=back.summary)
    n = ctx.lab.nodes.get(origin)
    svc = next((x for x in (n.services if n else ()) if x.port == res.probe.get("port")), None)
    if svc is not None and svc.kind == "ssh" and res.probe.get("kind") == "tcp":
        v.fixes(origin, sshd_argv(svc.port))        # the lab file says sshd listens there
    return v


def intended_dev(ctx: Context, node: str, dst: str) -> tuple[str | None, bool]:
    """The interface the node should send ``dst`` by, and whether the lab has it so far: the most
    specific of its tunnels' networks (now, or later in the lab file) and the lab file's routes."""
    best: tuple[int, int, str | None, bool] | None = None     # (prefix length, declared, dev, declared)
    for final in (False, True):
        for net in ctx.tunnel_nets_of(node, final):
            if in_nets(dst, [net]):
                plen = int(net.split("/")[1])
                dev = ctx.wg_iface(node, dst) or next(iter(ctx.model_wg(node)), None)
                cand = (plen, 1 + (not final), dev, not final)       # a tunnel before a route as wide
                best = cand if best is None or cand[:2] > best[:2] else best
    r = ctx.model_route(node, dst)
    if r is not None:
        plen = 0 if r.dst == "default" else int(r.dst.split("/")[1])
        dev = r.dev
        if not dev:
            n = ctx.lab.nodes[node]
            dev = next((i for i, c in n.addresses.items() if r.via and in_nets(r.via, [c])), None)
        cand = (plen, 0, dev, True)
        best = cand if best is None or cand[:2] > best[:2] else best
    n = ctx.lab.nodes.get(node)
    for ifname, cidr in (n.addresses.items() if n else ()):     # its own networks: on the link
        if in_nets(dst, [cidr]):
            cand = (int(cidr.split("/")[1]), 3, ifname, True)
            best = cand if best is None or cand[:2] > best[:2] else best
    return (best[2], best[3]) if best else (None, True)


def link_restore(ctx: Context, node: str, iface: str, phase: str, seen: tuple = ()) -> Verdict | None:
    """An interface the packet needs is down, has no address, or is gone: bring it back, with
    the routes through it that went with it (in that order)."""
    f = ctx.f(node)
    link = f.link(iface)
    params = {"node": node, "iface": iface}
    if link is None:
        if iface not in ctx.model_wg(node) or not ctx.declared(ctx.lab.nodes[node].wireguard[iface].stage):
            return None
        v = Verdict("link-down", Stop(node, iface, phase), params=params)
        v.add(node, "link", "iface-gone", iface=iface)
        v.fixes(node, *fixes.recreate_wg(ctx, node, iface))
        return v
    n = ctx.lab.nodes.get(node)
    wants_address = (iface in n.addresses or iface in n.wireguard) if n else ctx.is_wg(node, iface)
    if link.up and (link.addresses or not wants_address):
        return None
    v = Verdict("link-down", Stop(node, iface, phase), params=params)
    v.add(node, "link", "iface-down" if not link.up else "iface-no-address", iface=iface)
    if not link.up:
        v.fixes(node, ("ip", "link", "set", iface, "up"))
    v.fixes(node, *fixes.address_fix(ctx, node, iface))
    v.fixes(node, *fixes.lost_routes(ctx, node, iface))
    return v


def send_error(ctx: Context) -> Verdict | None:
    res, src = ctx.res, ctx.res.src
    err = res.send_error
    if not err:
        return None
    dst = res.probe["dst_ip"]
    if "not permitted" in err:
        drops = _drops(ctx, src, "OUTPUT")
        c = drops[0][0] if drops else None
        v = Verdict("output-filtered", Stop(src, res.route.get("dev"), "request"),
                    params={"node": src, "rule": c.rule if c else "?"})
        v.add(src, "kernel", "sendto", error=err)
        if c:
            v.add(src, "iptables", "rule-matched", chain="OUTPUT", rule=c.rule, n=drops[0][1])
            v.fixes(src, c.undo())
        return v
    if "too long" in err:
        dev = res.route.get("dev") or ctx.route(src, dst).dev
        link = ctx.f(src).link(dev)
        v = Verdict("mtu", Stop(src, dev, "request"),
                    params={"node": src, "iface": dev, "mtu": link.mtu if link else "?", "size": res.probe.get("size")})
        v.add(src, "kernel", "sendto-mtu", error=err, size=res.probe.get("size"), iface=dev,
              mtu=link.mtu if link else "?")
        v.fixes(src, *fixes.mtu_fix(ctx, src, dev))
        return v
    dev, _ = intended_dev(ctx, src, dst)
    if dev:
        v = link_restore(ctx, src, dev, "request")
        if v:
            v.lead(src, "kernel", "sendto", error=err)
            return v
    v = Verdict("route-missing", Stop(src, None, "request"), params={"node": src, "dst": dst, "iface": "-",
                                                                    **way(dev if ctx.is_wg(src, dev) else None)})
    v.add(src, "route", "route-get-error", dst=dst, error=err)
    v.fixes(src, *fixes.restore_route(ctx, src, dst))
    return v


def way(wg: str | None = None, via: str | None = None, door: str | None = None) -> dict:
    """How the packet should have gone, for the route-missing text: into a tunnel, to the node
    next door that has the tunnel, or just on toward its destination."""
    if wg and wg != "-":
        return {"way": ("@", "word.way-into"), "wg": wg}
    if via and door:
        return {"way": ("@", "word.way-via"), "via": via, "door": door}
    return {"way": ("@", "word.way-on")}


def tunnel_door(ctx: Context, node: str, dst: str) -> tuple[str, str, str] | None:
    """Another node on one of ``node``'s own networks whose tunnel carries ``dst`` (not merely a
    full tunnel): (that node, its address there, ``node``'s interface on that network)."""
    def real(addrs):                  # loopback is everybody's and nobody's network
        return [a for a in addrs if not a.startswith("127.")]
    mine = {name: real(l.addresses) for name, l in ctx.f(node).links.items() if real(l.addresses)}
    for other, f in ctx.facts.items():
        if other == node or not in_nets(dst, [n for n in ctx.tunnel_nets_of(other) if not n.endswith("/0")]):
            continue
        for l in f.links.values():
            for a in real(l.addresses):
                ip = a.split("/")[0]
                for name, addrs in mine.items():
                    if in_nets(ip, addrs):
                        return other, ip, name
    return None



def nothing_sent(ctx: Context) -> Verdict | None:
    """No error, and the probe never appeared on any interface: it waits at the source for an
    ARP answer from its next hop that never comes."""
    res, src = ctx.res, ctx.res.src
    if res.send_error or any(h.role in ("request", "reply") for h in res.hops):
        return None
    dev, via = res.route.get("dev"), res.route.get("via")
    return neighbor(ctx, src, dev, via or res.probe["dst_ip"], bool(via), res.probe["dst_ip"], "request")


def neighbor(ctx: Context, node: str, dev: str | None, nexthop: str, gateway: bool, dst: str,
             phase: str, seen=None) -> Verdict | None:
    """``node`` would send by ``dev`` to ``nexthop``, and nobody there answers ARP."""
    state = next((s for i, ip, s in ctx.f(node).neigh if i == dev and ip == nexthop), None)
    asked = [a for a in ctx.res.arp if a[0] == node and a[3] == 1 and a[5] == nexthop]
    if state not in UNANSWERED and not (asked and state is None):
        return None
    far = fixes.far_end(ctx, node, dev)
    if far:
        down = link_restore(ctx, far[0], far[1], phase)
        if down:
            return down
    v = Verdict("neighbor-unreachable", Stop(node, dev, phase),
                params={"node": node, "iface": dev, "nexthop": nexthop, "dst": dst,
                        "what": ("@", "word.gateway" if gateway else "word.host")})
    if seen is not None:
        v.add(node, "capture", "entered-never-left", summary=seen.summary, node=node, iface=seen.iface)
    v.add(node, "arp", "arp-unanswered", nexthop=nexthop, iface=dev, n=len(asked), state=state or "-")
    if gateway:
        v.fixes(node, *fixes.neighbor_fix(ctx, node, dst, nexthop))
    return v


def mtu_error(ctx: Context) -> Verdict | None:
    for e in ctx.res.errors:
        if not e.needs_frag:
            continue
        node = ctx.owner(e.src) or e.node
        iface = next((i for i, l in ctx.f(node).links.items() if l.mtu == e.mtu), None)
        v = Verdict("mtu", Stop(node, iface, "request"),
                    params={"node": node, "iface": iface, "mtu": e.mtu, "size": ctx.res.probe.get("size")})
        v.add(e.node, "capture", "captured", summary=e.summary)
        v.add(node, "link", "link-mtu", iface=iface, mtu=e.mtu)
        v.fixes(node, *fixes.mtu_fix(ctx, node, iface))
        return v
    return None


def wrong_exit(ctx: Context) -> Verdict | None:
    """The first node that sent the packet out of an interface its own configuration (or the lab
    file) does not send it by: a tunnel network out of a cable, or not the lab file's route."""
    res = ctx.res
    for h in res.hops:
        if h.role not in ("request", "reply") or h.layer != "inner" or h.dir != "out":
            continue
        node, dst = h.node, h.dst
        if ctx.on_link(node, dst):
            continue
        want, so_far = intended_dev(ctx, node, dst)
        if ctx.is_wg(node, h.iface) and (want is None or ctx.is_wg(node, want)):
            continue                     # into a tunnel, as meant (which peer is the tunnel's question)
        if (not want or want == h.iface) and h.role == "request" and not ctx.model_wg(node):
            v = _door_missed(ctx, h)
            if v:
                return v
        if not want or want == h.iface:
            continue
        n = ctx.lab.nodes.get(node)
        if n and want in n.wireguard and not ctx.declared(n.wireguard[want].stage):
            want_dev = None                  # the tunnel comes in a later stage
        else:
            want_dev = want
        if want_dev:
            v = link_restore(ctx, node, want_dev, h.role)
            if v:
                v.lead(node, "capture", "left-not-by", summary=h.summary, iface=h.iface, want=want)
                return v
        r = ctx.route(node, dst)
        v = Verdict("route-missing", Stop(node, h.iface, h.role),
                    params={"node": node, "iface": h.iface, "dst": dst, **way(want)})
        v.add(node, "capture", "left-not-by", summary=h.summary, iface=h.iface, want=want)
        if r.ok:
            v.add(node, "route", "route-get", dst=dst, via=r.via or "-", dev=r.dev)
        else:
            v.add(node, "route", "route-get-error", dst=dst, error=r.error)
        if want_dev:
            v.fixes(node, *fixes.restore_route(ctx, node, dst))
        return v
    return None


def _door_missed(ctx: Context, h) -> Verdict | None:
    """A node with no tunnel of its own sent a tunnel-bound request past the neighbour that has
    the tunnel (its route goes to another gateway)."""
    door = tunnel_door(ctx, h.node, h.dst)
    if door is None:
        return None
    other, ip, iface = door
    r = ctx.route(h.node, h.dst)
    if r.via == ip or other in {x.node for x in ctx.res.hops if x.t_ms > h.t_ms}:
        return None
    # the network as the door carries it (its own tunnels' narrowest network holding dst)
    nets = [n for n in ctx.tunnel_nets_of(other) if not n.endswith("/0") and in_nets(h.dst, [n])]
    net = max(nets, key=lambda n: int(n.split("/")[1]))
    v = Verdict("route-missing", Stop(h.node, h.iface, h.role),
                params={"node": h.node, "iface": h.iface, "dst": h.dst, **way(via=ip, door=other)})
    v.add(h.node, "capture", "left-not-by", summary=h.summary, iface=h.iface, want=f"{iface} via {ip} ({other})")
    v.add(h.node, "route", "route-get", dst=h.dst, via=r.via or "-", dev=r.dev)
    exists = any(x.dst == net for x in ctx.f(h.node).routes)
    return v.fixes(h.node, ("ip", "route", "replace" if exists else "add", net, "via", ip, "dev", iface))
