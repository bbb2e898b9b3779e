"""What the checks of every place share: the verdict nobody could reach (``inconsistent``), how a
packet should have gone (``way``, ``intended_dev``, ``tunnel_door``), links to bring back
(``link_restore``), a next hop that never answers (``neighbor``), reverse-path filtering
(``rp_verdict``) and a firewall that refused the packet (``drops`` finds the rule, by its counter
or, where it has none, by matching the packet against the ruleset; ``filtered`` says so).

The place modules (at_source, tunnel, forward, at_destination) import from here and from
fixes.py; nothing here imports them, so there is no circle.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import addr
from ..addr import bare, in_nets
from . import fixes
from .context import Context
from .firewall import FwRule, Packet
from .verdict import Stop, Verdict

UNANSWERED = ("INCOMPLETE", "FAILED")


@dataclass
class At:
    """A packet at one place of its path, as the checks of that place see it: the hop it was
    last seen on and its phase. Each place module extends it with what its checks ask."""
    ctx: Context
    h: object
    phase: str

    @property
    def node(self) -> str:
        return self.h.node

    @property
    def f(self):
        return self.ctx.f(self.node)
NO_ROUTE = ("unreachable", "blackhole", "prohibit")


def inconsistent(ctx: Context, why: str, **params) -> Verdict:
    """The capture and the nodes' state do not explain each other: say what was seen and why no
    check could name a cause."""
    last = ctx.res.last_seen
    stop = Stop(last.node, last.iface, last.phase) if last else Stop(ctx.res.src, None, "request")
    v = Verdict("inconsistent", stop, params={"node": stop.node, "why": ("@", f"why.{why}"), **params})
    v.add(stop.node, "capture", "story", story=ctx.res.story)
    v.add(stop.node, "state", "why", why=("@", f"why.{why}"), **params)
    return v


def no_route(r) -> bool:
    return not r.ok or r.type in NO_ROUTE


def fw_kind(rule: FwRule) -> str:
    """The evidence kind of a firewall rule: the tool that shows it."""
    if rule.backend == "nft":
        return "nft"
    return "ip6tables" if rule.family == 6 else "iptables"


def filtered(cause: str, node: str, iface: str | None, phase: str, rule: FwRule, n: int,
             params: dict, seen: tuple | None = None) -> Verdict:
    """The firewall of ``node`` dropped the packet: ``rule`` (or a policy) matched ``n`` packets
    (0: it has no counter, and matching the packet against the ruleset found it)."""
    named = rule.text if rule.backend == "iptables" else f"{rule.place}: {rule.text}"
    v = Verdict(cause, Stop(node, iface, phase), params={**params, "rule": named})
    if seen:
        v.add(node, seen[0], seen[1], **seen[2])
    if n:
        v.add(node, fw_kind(rule), "rule-matched", chain=rule.place, rule=rule.text, n=n)
    else:
        v.add(node, fw_kind(rule), "rule-judged", chain=rule.place, rule=rule.text)
    return v


PROTOCOLS = {1: "icmp", 58: "icmp", 6: "tcp", 17: "udp"}


def packet(ctx: Context, node: str, h, phase: str, *, iif: str | None = None, oif: str | None = None,
           back: bool = False, dst: str | None = None) -> Packet:
    """The packet of hop ``h`` as ``node``'s firewall sees it: addresses, protocol, ports, and the
    state connection tracking gives it (NEW for a request, ESTABLISHED for a reply); ``back``: the
    answer to it, going the other way; ``dst``: its destination once connection tracking restored it.
    ``rpf``: is the route back to its source by ``iif`` (strict), by another (loose), or none?"""
    src, to, sport, dport = (h.dst, h.src, h.dport, h.sport) if back else (h.src, h.dst, h.sport, h.dport)
    dst = dst or to
    rpf = None
    if iif:
        r = ctx.route(node, src)
        rpf = None if r.error == "not looked up" else "none" if no_route(r) else "strict" if r.dev == iif else "loose"
    proto = PROTOCOLS.get(h.proto)
    ports = proto in ("tcp", "udp")
    return Packet(addr.family(dst) or ctx.family, iif=iif, oif=oif, proto=proto,
                  sport=sport if ports else None, dport=dport if ports else None, src=src, dst=dst,
                  ctstate="ESTABLISHED" if back or phase == "reply" else "NEW", rpf=rpf)


def drops(ctx: Context, node: str, hook: str, pkt: Packet | None) -> list[tuple[FwRule, int]]:
    """What dropped the packet on ``hook`` (or a hook before it) of ``node``: the drops whose
    counters moved during the probe; else, for a packet known to be lost there, the rule or policy
    without a counter that the ruleset gives for ``pkt`` (with 0 packets: found by matching)."""
    fw = ctx.f(node).fw
    return fw.dropped(hook, pkt.family if pkt else ctx.family) or (fw.judged(hook, pkt) if pkt else [])


def strict_rp(ctx: Context, node: str, iface: str) -> tuple[bool, str, str]:
    """Is reverse-path filtering strict on ``iface`` (the kernel takes the larger of ``all`` and
    the interface's value)? IPv6 has no such sysctl: its reverse-path drops are firewall rules."""
    if ctx.family == 6:
        return False, "0", "0"
    f = ctx.f(node)
    a = f.sysctl.get("net.ipv4.conf.all.rp_filter", "0") or "0"
    i = f.sysctl.get(f"net.ipv4.conf.{iface}.rp_filter", "0") or "0"
    return max(int(a), int(i)) == 1, a, i


def rp_failed(ctx: Context, node: str, iface: str, dst: str, src: str) -> tuple | None:
    """When strict reverse-path filtering is why the input lookup failed (the kernel answers
    EXDEV/EINVAL then): (the lookup, the route back, rp_filter of all, of the interface)."""
    strict, rp_all, rp_if = strict_rp(ctx, node, iface)
    r = ctx.route(node, dst, src, iface)
    back = ctx.route(node, src)
    if not strict or r.ok or not back.ok or back.dev == iface:
        return None
    return r, back, rp_all, rp_if


def rp_verdict(ctx: Context, node: str, iface: str, phase: str, dst: str, src: str, params: dict,
               seen: tuple, failed: tuple, iif_error: bool = True) -> Verdict:
    """The verdict of a packet that strict reverse-path filtering dropped on ``iface``; the caller
    adds the fix (the route back put right, or loose mode)."""
    r, back, rp_all, rp_if = failed
    v = Verdict("rp-filter", Stop(node, iface, phase),
                params={**params, "back_dev": back.dev, "back_via": back.via or "-",
                        "how": ("@", "word.rp-sysctl"), "loosen": ("@", "word.rp-loosen-sysctl")})
    v.add(node, seen[0], seen[1], **seen[2])
    v.add(node, "sysctl", "rp-sysctl", all=rp_all, iface=iface, value=rp_if)
    if iif_error:
        v.add(node, "route", "route-get-iif-error", dst=dst, src=src, iif=iface, error=r.error)
    v.add(node, "route", "route-back", src=src, via=back.via or "-", dev=back.dev, iface=iface)
    return v


def rp_dropped(ctx: Context, node: str, iface: str, src: str, family: int | None = None) -> tuple | None:
    """A reverse-path rule of ``node``'s firewall dropped the packet (IPv6 has no rp_filter sysctl:
    firewalld's ``-m rpfilter``, nftables' ``fib``), and the route back to ``src`` does not leave
    by ``iface``: (the rule, packets it dropped, the route back). ``family``: the packet's (the
    probe's unless said)."""
    drops = ctx.f(node).fw.reverse_path_drops(family or ctx.family)
    if not drops:
        return None
    back = ctx.route(node, src)
    if back.ok and back.dev == iface and not no_route(back):
        return None
    return drops[0][0], drops[0][1], back


def rp_rule_verdict(ctx: Context, node: str, iface: str, phase: str, src: str, params: dict, seen: tuple,
                    dropped: tuple) -> Verdict:
    """The verdict of a packet a reverse-path rule dropped; the caller adds the fix."""
    rule, n, back = dropped
    v = Verdict("rp-filter", Stop(node, iface, phase),
                params={**params, "back_dev": back.dev or "-", "back_via": back.via or "-", "rule": rule.text,
                        "how": ("@", "word.rp-rule"), "loosen": ("@", "word.rp-loosen-rule")})
    v.add(node, seen[0], seen[1], **seen[2])
    v.add(node, fw_kind(rule), "rule-matched", chain=rule.place, rule=rule.text, n=n)
    if back.ok:
        v.add(node, "route", "route-back", src=src, via=back.via or "-", dev=back.dev, iface=iface)
    else:
        v.add(node, "route", "route-get-error", dst=src, error=back.error)
    return v


def mtu_words(ctx: Context, node: str, iface: str | None) -> dict:
    """How the MTU explanation names the family's rules: IPv4's "don't fragment" and "fragmentation
    needed", IPv6's "packet too big" (it is never fragmented on the way), and WireGuard's overhead
    on this tunnel (80 bytes when its peers are reached over IPv6, 60 over IPv4)."""
    six = ctx.family == 6
    over = fixes.wg_overhead(ctx, node, iface) if iface and ctx.is_wg(node, iface) else 60
    return {"df": ("@", "word.df6" if six else "word.df4"), "toobig": ("@", "word.toobig6" if six else "word.toobig4"),
            "overhead": ("@", "word.overhead6" if over == 80 else "word.overhead4")}


def way(wg: str | None = None, via: str | None = None, door: str | None = None) -> dict:
    """How the packet should have gone, for the route-missing text: into a tunnel, to the node
    next door that has the tunnel, or just on toward its destination."""
    if wg and wg != "-":
        return {"way": ("@", "word.way-into"), "wg": wg}
    if via and door:
        return {"way": ("@", "word.way-via"), "via": via, "door": door}
    return {"way": ("@", "word.way-on")}


def intended_dev(ctx: Context, node: str, dst: str) -> tuple[str | None, bool]:
    """The interface the node should send ``dst`` by, and whether the lab has it so far: the most
    specific of its tunnels' networks (now, or later in the lab file) and the lab file's routes."""
    best: tuple[int, int, str | None, bool] | None = None     # (prefix length, rank, dev, declared)

    def consider(cand):
        nonlocal best
        best = cand if best is None or cand[:2] > best[:2] else best
    for final in (False, True):
        for net in ctx.tunnel_nets_of(node, final):
            if in_nets(dst, [net]):
                dev = ctx.wg_iface(node, dst) or next(iter(ctx.model_wg(node)), None)
                consider((addr.prefixlen(net), 1 + (not final), dev, not final))   # a tunnel before a route as wide
    r = ctx.model_route(node, dst)
    if r is not None:
        dev = r.dev
        if not dev:
            n = ctx.lab.nodes[node]
            dev = next((i for i, c in n.all_cidrs() if r.via and in_nets(r.via, [c])), None)
        consider((addr.prefixlen(r.dst, r.family), 0, dev, True))
    n = ctx.lab.nodes.get(node)
    for ifname, cidr in (n.all_cidrs() if n else ()):     # its own networks: on the link
        if ifname in n.addresses and in_nets(dst, [cidr]):
            consider((addr.prefixlen(cidr), 3, ifname, True))
    return (best[2], best[3]) if best else (None, True)


def tunnel_door(ctx: Context, node: str, dst: str) -> tuple[str, str, str] | None:
    """Another node on one of ``node``'s own networks whose tunnel carries ``dst`` (not merely a
    full tunnel): (that node, its address there, ``node``'s interface on that network)."""
    def real(addrs):                  # loopback is everybody's and nobody's network
        return [a for a in addrs if not addr.is_loopback(a)]
    mine = {name: real(l.addresses) for name, l in ctx.f(node).links.items() if real(l.addresses)}
    for other, f in ctx.facts.items():
        if other == node or not in_nets(dst, [n for n in ctx.tunnel_nets_of(other) if not addr.is_default(n)]):
            continue
        for l in f.links.values():
            for a in real(l.addresses):
                ip = bare(a)
                for name, addrs in mine.items():
                    if in_nets(ip, addrs):
                        return other, ip, name
    return None


def link_restore(ctx: Context, node: str, iface: str, phase: str) -> Verdict | None:
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
    wants_address = any(addr.family(c) == ctx.family for c in n.cidrs(iface)) if n else ctx.is_wg(node, iface)
    has = any(addr.family(a) == ctx.family for a in link.addresses)
    if link.up and (has or not wants_address):
        return None
    v = Verdict("link-down", Stop(node, iface, phase), params=params)
    v.add(node, "link", "iface-down" if not link.up else "iface-no-address", iface=iface)
    if ctx.family == 6 and not has and fixes.ipv6_disabled(ctx, node, iface):
        v.add(node, "sysctl", "ipv6-disabled", iface=iface)
    if not link.up:
        v.fixes(node, ("ip", "link", "set", iface, "up"))
    v.fixes(node, *fixes.address_fix(ctx, node, iface))
    v.fixes(node, *fixes.lost_routes(ctx, node, iface))
    return v


def neighbor(ctx: Context, node: str, dev: str | None, nexthop: str, gateway: bool, dst: str,
             phase: str, seen=None) -> Verdict | None:
    """``node`` would send by ``dev`` to ``nexthop``, and nobody there answers ARP (IPv6:
    neighbour solicitation)."""
    state = next((s for i, ip, s in ctx.f(node).neigh if i == dev and addr.same_address(ip, nexthop)), None)
    asked = [a for a in ctx.res.arp if a[0] == node and a[3] == 1 and addr.same_address(a[5], nexthop)]
    if state not in UNANSWERED and not (asked and state is None):
        return None
    far = fixes.far_end(ctx, node, dev)
    if far:
        down = link_restore(ctx, far[0], far[1], phase)
        if down:
            return down
    v = Verdict("neighbor-unreachable", Stop(node, dev, phase),
                params={"node": node, "iface": dev, "nexthop": nexthop, "dst": dst,
                        "what": ("@", "word.gateway" if gateway else "word.host"),
                        "asks": ("@", "word.arp" if ctx.family == 4 else "word.ndp")})
    if seen is not None:
        v.add(node, "capture", "entered-never-left", summary=seen.summary, node=node, iface=seen.iface)
    v.add(node, "arp" if ctx.family == 4 else "ndp", "arp-unanswered" if ctx.family == 4 else "ndp-unanswered",
          nexthop=nexthop, iface=dev, n=len(asked), state=state or "-")
    if gateway:
        v.fixes(node, *fixes.neighbor_fix(ctx, node, dst, nexthop))
    return v


def peer_list(ctx: Context, node: str, wg: str | None = None):
    return [p for w in ctx.f(node).wg if wg is None or w.name == wg for p in w.peers]


def who(ctx: Context, key: str) -> str:
    """A peer's key as a person reads it: the node it belongs to, else its first characters."""
    return ctx.key_owner(key) or key[:12] + "…"


def _declares_established(ctx: Context, node: str, hook: str) -> bool:
    """Does the lab file give ``node`` a rule for this hook (and the probe's family) that accepts
    replies by connection state? Then a reply dropped there lost that rule: it is what comes back."""
    from . import firewall
    n = ctx.lab.nodes.get(node)
    chain = firewall.chain_of_hook(hook)
    return any(r.family == ctx.family and ctx.declared(r.stage) and chain in r.args and "ESTABLISHED" in r.rule
               for r in (n.iptables if n else ()))


def let_through(ctx: Context, node: str, hook: str, c: FwRule, iface: str | None, out: str | None,
                phase: str) -> tuple[str, ...]:
    """What lets this packet through a hook that dropped it: take out a rule someone added, or
    (for a policy, or a catch-all drop at the end) an accept for exactly this direction. On a
    stateful firewall (or one the lab file makes stateful) a reply needs the ESTABLISHED rule,
    not a hole of its own."""
    from . import firewall
    if not c.is_policy and not c.catch_all:
        return firewall.undo(c)
    fw = ctx.f(node).fw
    first = not c.is_policy
    if phase == "reply" and (fw.stateful(hook, c.family or ctx.family) or _declares_established(ctx, node, hook)):
        return firewall.accept(fw, hook, c.family or ctx.family, like=c, first=first, established=True)
    oif = None
    if hook == "forward" and out and not (iface and out == iface) and not ctx.is_wg(node, iface):
        oif = out
    return firewall.accept(fw, hook, c.family or ctx.family, like=c, first=first, iif=iface, oif=oif)
