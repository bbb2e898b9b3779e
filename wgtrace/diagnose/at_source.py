"""Checks over the whole path that start at the source, in order (``CHECKS``): the destination
refused, the source could not send, nothing was sent, an ICMP error named the MTU, a node sent a
tunnel-bound packet out of the wrong interface."""
from __future__ import annotations

from .. import addr
from ..addr import in_nets
from ..model.commands import sshd_argv
from . import firewall, fixes
from .common import (drops as lost, filtered, intended_dev, link_restore, mtu_words, neighbor, packet,
                     tunnel_door, way)
from .firewall import Packet
from .context import Context
from .verdict import Stop, Verdict


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
    for hook, cause in (("forward", "forward-filtered"), ("input", "input-filtered")):
        here = arrive is not None and (hook == "input") == (origin == dst_node)    # the hook it met there
        rejects = lost(ctx, origin, hook, packet(ctx, origin, arrive, "request", iif=arrive.iface) if here else None)
        if rejects:
            c, n = rejects[0]
            v = filtered(cause, origin, iface, "request", c, n, {**params, "out": "?", "src": res.probe.get("src_ip")})
            v.add(res.src, "capture", "refusal-back", summary=back.summary)
            return v.fixes(origin, firewall.undo(c))
    v = Verdict("port-closed", Stop(origin, iface, "request"), params=params)
    v.add(res.src, "capture", "refusal-back", summary=back.summary)
    n = ctx.lab.nodes.get(origin)
    svc = next((x for x in (n.services if n else ()) if x.port == res.probe.get("port")), None)
    if svc is not None and svc.kind == "ssh" and res.probe.get("kind") == "tcp":
        v.fixes(origin, sshd_argv(svc.port))        # the lab file says sshd listens there
    return v


def send_error(ctx: Context) -> Verdict | None:
    res, src = ctx.res, ctx.res.src
    err = res.send_error
    if not err:
        return None
    dst = res.probe["dst_ip"]
    if "not permitted" in err:
        kind, port = res.probe.get("kind"), res.probe.get("port")
        sent = Packet(ctx.family, iif="", oif=res.route.get("dev"), proto=kind if kind in ("icmp", "tcp", "udp") else None,
                      dport=port if kind in ("tcp", "udp") else None, src=res.probe.get("src_ip"), dst=dst)
        drops = lost(ctx, src, "output", sent)
        if drops:
            c, n = drops[0]
            v = filtered("output-filtered", src, res.route.get("dev"), "request", c, n, {"node": src},
                         seen=("kernel", "sendto", {"error": err}))
            return v.fixes(src, firewall.undo(c))
        v = Verdict("output-filtered", Stop(src, res.route.get("dev"), "request"), params={"node": src, "rule": "?"})
        return v.add(src, "kernel", "sendto", error=err)
    if "too long" in err:
        dev = res.route.get("dev") or ctx.route(src, dst).dev
        link = ctx.f(src).link(dev)
        v = Verdict("mtu", Stop(src, dev, "request"),
                    params={"node": src, "iface": dev, "mtu": link.mtu if link else "?", "size": res.probe.get("size"),
                            **mtu_words(ctx, src, dev)})
        v.add(src, "kernel", "sendto-mtu" if ctx.family == 4 else "sendto-mtu6", error=err,
              size=res.probe.get("size"), iface=dev, mtu=link.mtu if link else "?")
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


def nothing_sent(ctx: Context) -> Verdict | None:
    """No error, and the probe never appeared on any interface: it waits at the source for an
    ARP answer from its next hop that never comes."""
    res, src = ctx.res, ctx.res.src
    if res.send_error or any(h.role in ("request", "reply") for h in res.hops):
        return None
    dev, via = res.route.get("dev"), res.route.get("via")
    return neighbor(ctx, src, dev, via or res.probe["dst_ip"], bool(via), res.probe["dst_ip"], "request")


def mtu_error(ctx: Context) -> Verdict | None:
    for e in ctx.res.errors:
        if not e.needs_frag:
            continue
        node = ctx.owner(e.src) or e.node
        iface = next((i for i, l in ctx.f(node).links.items() if l.mtu == e.mtu), None)
        v = Verdict("mtu", Stop(node, iface, "request"),
                    params={"node": node, "iface": iface, "mtu": e.mtu, "size": ctx.res.probe.get("size"),
                            **mtu_words(ctx, node, iface)})
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
    nets = [n for n in ctx.tunnel_nets_of(other) if not addr.is_default(n) and in_nets(h.dst, [n])]
    net = max(nets, key=addr.prefixlen)
    v = Verdict("route-missing", Stop(h.node, h.iface, h.role),
                params={"node": h.node, "iface": h.iface, "dst": h.dst, **way(via=ip, door=other)})
    v.add(h.node, "capture", "left-not-by", summary=h.summary, iface=h.iface, want=f"{iface} via {ip} ({other})")
    v.add(h.node, "route", "route-get", dst=h.dst, via=r.via or "-", dev=r.dev)
    exists = any(x.dst == net for x in ctx.f(h.node).routes)
    return v.fixes(h.node, (*(("ip", "-6") if addr.family(net) == 6 else ("ip",)), "route",
                            "replace" if exists else "add", net, "via", ip, "dev", iface))


CHECKS = (refused, send_error, nothing_sent, mtu_error, wrong_exit)
