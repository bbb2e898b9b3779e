"""From a trace and the nodes' state to one verdict: cause, stop, evidence, fix.

Pure rules over records (``path.TraceResult``, ``evidence.NodeFacts``, route lookups)
and the lab model; nothing here touches the kernel. The rules follow the packet:
find the last place it was seen, then ask that node's state why it went no further.
The lab model is used only as the reference a fix restores (the right key, endpoint,
allowed-ips); the cause always comes from what the kernel says now.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from .evidence import NodeFacts
from .model import Lab
from .path import Hop, TraceResult
from .stages import endpoint_of

CAUSES = ("reachable", "route-missing", "wg-allowed-ips", "wg-no-handshake", "forwarding-disabled",
          "forward-filtered", "nat-missing", "input-filtered", "output-filtered", "port-closed",
          "link-down", "rp-filter", "mtu", "inconsistent")


@dataclass
class Verdict:
    cause: str
    stop: dict | None                  # {"node", "iface", "direction": request|reply}
    evidence: list[dict] = field(default_factory=list)   # {"node", "kind", "detail"}
    fix: list[dict] = field(default_factory=list)        # {"node", "command"}
    params: dict = field(default_factory=dict)           # fills the explanation templates

    def add(self, node: str, kind: str, detail: str) -> "Verdict":
        self.evidence.append({"node": node, "kind": kind, "detail": detail})
        return self


@dataclass
class Context:
    lab: Lab
    res: TraceResult
    facts: dict[str, NodeFacts]
    routes: dict[tuple, dict]          # (node, dst, src, iif) -> route_get result
    keys: dict[str, str]               # node -> public key (the lab's real keys)
    now: float = 0.0                   # when the state was read (handshake ages)

    def route(self, node: str, dst: str, src: str | None = None, iif: str | None = None) -> dict:
        return self.routes.get((node, dst, src, iif)) or self.routes.get((node, dst, None, None)) or {}

    def wg_iface(self, node: str) -> str | None:
        f = self.facts.get(node)
        if f and f.wg:
            return f.wg[0].name
        n = self.lab.nodes.get(node)
        return next(iter(n.wireguard), None) if n else None

    def node_of_key(self, key: str) -> str | None:
        return next((n for n, k in self.keys.items() if k == key), None)

    def model_peer(self, node: str, peer: str):
        """The lab file's final declaration of ``peer`` on ``node`` (later stages override)."""
        found = None
        for w in self.lab.nodes[node].wireguard.values():
            for p in w.peers:
                if p.peer == peer:
                    found = p if found is None else replace(
                        p, endpoint=p.endpoint or found.endpoint,
                        keepalive=p.keepalive if p.keepalive is not None else found.keepalive)
        return found


def _in(ip: str, nets) -> bool:
    a = ipaddress.IPv4Address(ip)
    return any(a in ipaddress.IPv4Network(n, strict=False) for n in nets)


def _covering_net(ctx: Context, ip: str) -> str:
    """The lab's network for ``ip`` as a fix should name it: an allowed-ips network of the
    lab file that contains it, else the LAN it lives on, else the host address."""
    best = None
    for n in ctx.lab.nodes.values():
        for w in n.wireguard.values():
            for p in w.peers:
                for net in p.allowed_ips:
                    N = ipaddress.IPv4Network(net)
                    if ipaddress.IPv4Address(ip) in N and N.prefixlen > 0 and (best is None or N.prefixlen > best.prefixlen):
                        best = N
    if best is None:
        owner = ctx.lab.address_owner(ip)
        if owner:
            cidr = ctx.lab.nodes[owner[0]].addresses.get(owner[1])
            if cidr:
                best = ipaddress.IPv4Interface(cidr).network
    return str(best) if best else f"{ip}/32"


def _vpn_nets(ctx: Context) -> list[str]:
    return [str(ipaddress.IPv4Interface(w.address).network)
            for n in ctx.lab.nodes.values() for w in n.wireguard.values()]


def behind_tunnel(ctx: Context, ip: str) -> bool:
    """Should ``ip`` be reached through WireGuard (a VPN address, or a network some peer carries)?"""
    if _in(ip, _vpn_nets(ctx)):
        return True
    nets = [net for n in ctx.lab.nodes.values() for w in n.wireguard.values() for p in w.peers
            for net in p.allowed_ips if not net.endswith("/0")]
    for f in ctx.facts.values():
        for w in f.wg:
            for p in w.peers:
                nets += [n for n in p.allowed_ips if not n.endswith("/0")]
    return _in(ip, nets)


def _stop(node: str, iface: str | None, phase: str) -> dict:
    return {"node": node, "iface": iface, "direction": phase}


# ---------------------------------------------------------------------------------------
def decide(ctx: Context) -> Verdict:
    res = ctx.res
    if res.reachable:
        v = Verdict("reachable", None, params={"src": res.src, "dst": res.dst})
        return v.add(res.src, "capture", f"the answer came back: {res.inner_path('reply') or 'reply seen'}")
    if res.send_error:
        return _send_error(ctx)
    for rule in (_refused, _mtu_error, _route_missing, _nat_missing, _at_last_hop):
        v = rule(ctx)
        if v:
            return v
    return _inconsistent(ctx, "no rule explains where the probe stopped")


def _refused(ctx: Context) -> Verdict | None:
    """The destination answered the TCP SYN with a reset: reachable, but nothing accepts it."""
    res = ctx.res
    rst = next((h for h in res.hops if h.role == "reply" and "Flags [R" in h.summary and h.node == res.src), None)
    if rst is None or res.reachable:
        return None
    arrive = next((h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "in"
                   and ctx.lab.address_owner(res.probe["dst_ip"]) and
                   h.node == ctx.lab.address_owner(res.probe["dst_ip"])[0]), None)
    node = arrive.node if arrive else (ctx.lab.address_owner(res.probe["dst_ip"]) or (res.src,))[0]
    iface = arrive.iface if arrive else None
    rejects = [(c, n) for c, n in ctx.facts[node].hits if c.table == "filter" and c.chain == "INPUT"
               and c.target in ("REJECT", "DROP")]
    if rejects:
        c, n = rejects[0]
        v = Verdict("input-filtered", _stop(node, iface, "request"),
                    params={"node": node, "iface": iface, "rule": c.rule})
        v.add(node, "iptables", f"{c.rule} matched {n} packet(s) during the probe")
        v.fix = [_undo_rule(node, c, "INPUT")]
    else:
        v = Verdict("port-closed", _stop(node, iface, "request"),
                    params={"node": node, "port": res.probe.get("port"), "dst": res.probe["dst_ip"]})
        svc = next((x for x in ctx.lab.nodes[node].services if x.port == res.probe.get("port")), None)
        if svc is not None and svc.kind == "ssh":      # the lab file says what should listen there
            from .build import SSH_ARGS
            v.fix = [{"node": node, "command": "/usr/sbin/sshd " + " ".join(SSH_ARGS) + f" -p {svc.port}"}]
    v.add(res.src, "capture", f"{rst.summary}: a TCP reset came back")
    return v


def _send_error(ctx: Context) -> Verdict:
    res, src = ctx.res, ctx.res.src
    wg = ctx.wg_iface(src)
    link = ctx.facts[src].links.get(wg or "")
    if link is not None and not link["up"]:
        v = Verdict("link-down", _stop(src, wg, "request"), params={"node": src, "iface": wg})
        v.add(src, "kernel", f"sendto: {res.send_error}")
        v.add(src, "link", f"{wg} is down (its routes went with it)")
        v.fix = [{"node": src, "command": f"ip link set {wg} up"}]
        return v
    if "not permitted" in res.send_error:
        drops = [(c, n) for c, n in ctx.facts[src].hits if c.table == "filter" and c.chain == "OUTPUT"
                 and c.target in ("DROP", "REJECT")]
        c = drops[0][0] if drops else None
        v = Verdict("output-filtered", _stop(src, res.route.get("dev"), "request"),
                    params={"node": src, "rule": c.rule if c else "?"})
        v.add(src, "kernel", f"sendto: {res.send_error}")
        if c:
            v.add(src, "iptables", f"{c.rule} matched {drops[0][1]} packet(s) during the probe")
            v.fix = [_undo_rule(src, c, "OUTPUT")]
        return v
    if "too long" in res.send_error:
        dev = res.route.get("dev") or ctx.route(src, res.probe["dst_ip"]).get("dev")
        mtu = ctx.facts[src].links.get(dev, {}).get("mtu")
        v = Verdict("mtu", _stop(src, dev, "request"),
                    params={"node": src, "iface": dev, "mtu": mtu, "size": res.probe.get("size")})
        v.add(src, "kernel", f"sendto: {res.send_error} (packet {res.probe.get('size')} bytes, DF, {dev} mtu {mtu})")
        v.fix = _mtu_fix(ctx, src, dev)
        return v
    v = Verdict("route-missing", _stop(src, None, "request"),
                params={"node": src, "dst": res.probe["dst_ip"], "iface": "-"})
    v.add(src, "route", f"ip route get {res.probe['dst_ip']}: {res.send_error}")
    v.fix = _route_fix(ctx, src, res.probe["dst_ip"])
    return v


def _mtu_default(ctx: Context, node: str, iface: str) -> int:
    return 1420 if iface in ctx.lab.nodes[node].wireguard else 1500


def _mtu_fix(ctx: Context, node: str, iface: str | None) -> list[dict]:
    if not iface:
        return []
    mtu = ctx.facts[node].links.get(iface, {}).get("mtu")
    want = _mtu_default(ctx, node, iface)
    if mtu and mtu < want:
        return [{"node": node, "command": f"ip link set dev {iface} mtu {want}"}]
    return []


def _mtu_error(ctx: Context) -> Verdict | None:
    for e in ctx.res.errors:
        if "need to frag" in e.summary:
            owner = ctx.lab.address_owner(e.src)
            node = owner[0] if owner else e.node
            # the interface too small for it: the one whose MTU the error names
            mtu = int(e.summary.split("mtu ")[1].split(")")[0])
            iface = next((i for i, l in ctx.facts.get(node, NodeFacts(node)).links.items() if l["mtu"] == mtu), None)
            v = Verdict("mtu", _stop(node, iface, "request"),
                        params={"node": node, "iface": iface, "mtu": mtu, "size": ctx.res.probe.get("size")})
            v.add(e.node, "capture", e.summary)
            v.add(node, "link", f"{iface} mtu {mtu}")
            v.fix = _mtu_fix(ctx, node, iface)
            return v
    return None


def _route_fix(ctx: Context, node: str, dst: str, prefix: str | None = None) -> list[dict]:
    """Route ``dst``'s network into the node's WireGuard interface, toward the peer that carries it."""
    wg = ctx.wg_iface(node)
    if not wg or wg not in ctx.facts[node].links:
        return []
    net = prefix or _covering_net(ctx, dst)
    via = ""
    for w in ctx.lab.nodes[node].wireguard.values():
        for p in w.peers:
            if p.endpoint:        # a spoke: send it to the hub's tunnel address, as the document does
                hub = ctx.lab.nodes[p.peer].wireguard
                if hub:
                    via = f" via {next(iter(hub.values())).address.split('/')[0]}"
    verb = "replace" if prefix else "add"
    return [{"node": node, "command": f"ip route {verb} {net}{via} dev {wg}"}]


def _route_missing(ctx: Context) -> Verdict | None:
    """The first node with a tunnel that sent a tunnel-bound packet out another way."""
    res = ctx.res
    for phase in ("request", "reply"):
        for h in res.hops:
            if h.role != phase or h.layer != "inner" or h.dir != "out":
                continue
            wg = ctx.wg_iface(h.node)
            if wg and h.iface != wg and wg in ctx.facts[h.node].links and behind_tunnel(ctx, h.dst) \
                    and not _on_link(ctx, h.node, h.dst):
                if not ctx.facts[h.node].links[wg]["up"]:      # its routes went down with it
                    v = Verdict("link-down", _stop(h.node, wg, phase), params={"node": h.node, "iface": wg})
                    v.add(h.node, "capture", f"{h.summary} left by {h.iface}, not {wg}")
                    v.add(h.node, "link", f"{wg} is down, and the routes into it are gone")
                    v.fix = [{"node": h.node, "command": f"ip link set {wg} up"}]
                    return v
                r = ctx.route(h.node, h.dst)
                v = Verdict("route-missing", _stop(h.node, h.iface, phase),
                            params={"node": h.node, "iface": h.iface, "dst": h.dst, "wg": wg})
                v.add(h.node, "capture", f"{h.summary} left by {h.iface}, not {wg}")
                v.add(h.node, "route", f"ip route get {h.dst}: via {r.get('via')} dev {r.get('dev')}"
                      if r.get("ok") else f"ip route get {h.dst}: {r.get('error')}")
                specific = ctx.routes.get((h.node, "match", h.dst))
                v.fix = _route_fix(ctx, h.node, h.dst, prefix=specific)
                return v
            if phase == "request" and h.node == res.src and h.iface != wg \
                    and (not wg or wg not in ctx.facts[h.node].links) and behind_tunnel(ctx, h.dst):
                v = Verdict("route-missing", _stop(h.node, h.iface, phase),
                            params={"node": h.node, "iface": h.iface, "dst": h.dst, "wg": "wg0"})
                v.add(h.node, "capture", f"{h.summary} left by {h.iface}: {h.node} has no WireGuard interface yet")
                return v
    return None


def _on_link(ctx: Context, node: str, ip: str) -> bool:
    for l in ctx.facts[node].links.values():
        if _in(ip, l["addresses"]):
            return True
    return False


def _nat_missing(ctx: Context) -> Verdict | None:
    """The request reached the destination with a source it can only answer via its default route."""
    res = ctx.res
    if not res.reached_dst or res.stop_phase != "reply":
        return None
    arrive = next(h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "in"
                  and ctx.lab.address_owner(res.probe["dst_ip"]) and h.node == ctx.lab.address_owner(res.probe["dst_ip"])[0])
    sent = [h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "out"
            and h.t_ms <= arrive.t_ms and h.node != arrive.node]
    if not sent:
        return None
    fwd = sent[-1]                       # the node that put the request on the destination's LAN
    fwd_addr = [a.split("/")[0] for a in ctx.facts[fwd.node].links.get(fwd.iface, {}).get("addresses", [])]
    back = ctx.route(arrive.node, arrive.src)
    if not _in(arrive.src, _vpn_nets(ctx)) or back.get("via") in fwd_addr:
        return None
    vpn = next(n for n in _vpn_nets(ctx) if _in(arrive.src, [n]))
    v = Verdict("nat-missing", _stop(fwd.node, fwd.iface, "reply"),
                params={"node": fwd.node, "iface": fwd.iface, "dst_node": arrive.node, "src": arrive.src,
                        "gw": back.get("via") or "-", "vpn": vpn})
    v.add(arrive.node, "capture", f"{arrive.summary} arrived on {arrive.node} {arrive.iface}")
    v.add(arrive.node, "route", f"ip route get {arrive.src}: via {back.get('via')} dev {back.get('dev')}")
    masq = [c for c in ctx.facts[fwd.node].rules if c.table == "nat" and c.target in ("MASQUERADE", "SNAT")]
    v.add(fwd.node, "nat", "no MASQUERADE/SNAT rule in POSTROUTING" if not masq
          else "NAT rules present but none matched: " + "; ".join(c.rule for c in masq))
    for line in ctx.facts[fwd.node].conntrack:
        v.add(fwd.node, "conntrack", line)
    v.fix = [{"node": fwd.node, "command": f"iptables -t nat -A POSTROUTING -s {vpn} -o {fwd.iface} -j MASQUERADE"}]
    return v


def _dropping_hits(f: NodeFacts, table: str, chain: str):
    return [(c, n) for c, n in f.hits if c.table == table and c.chain == chain and c.target in ("DROP", "REJECT")]


def _at_last_hop(ctx: Context) -> Verdict | None:
    res = ctx.res
    moving = [h for h in res.hops if h.role in ("request", "reply")]
    if not moving:
        return None
    h = moving[-1]
    phase = h.role
    if h.layer == "underlay" and h.dir == "in":
        node = ctx.lab.nodes.get(h.node)
        if node and node.wireguard and any(node.address_of(i) == h.dst for i in node.addresses):
            return _tunnel_receive(ctx, h, phase)
        return _forwarding(ctx, h, phase)       # a router on the way dropped the datagram
    if h.layer == "inner" and h.dir == "out" and h.iface == ctx.wg_iface(h.node):
        return _tunnel_send(ctx, h, phase)
    if h.layer == "inner" and h.dir == "in":
        dst_owner = ctx.lab.address_owner(res.probe["dst_ip"])
        if phase == "request" and dst_owner and dst_owner[0] == h.node:
            return _at_destination(ctx, h, phase)
        return _forwarding(ctx, h, phase)
    if h.dir == "out":
        return _next_link(ctx, h, phase)
    return None


def _carried_by(ctx: Context, h: Hop) -> Hop:
    return ctx.res.hops[h.carries] if h.carries is not None else h


def _peer_for(ctx: Context, node: str, dst: str, peers):
    """The peer that should carry ``dst``: the one the lab file gives that network, else the one
    the route points at, else the only one."""
    for w in ctx.lab.nodes[node].wireguard.values():
        for mp in w.peers:
            if _in(dst, mp.allowed_ips):
                key = ctx.keys.get(mp.peer)
                match = next((p for p in peers if p.public_key == key), None)
                if match:
                    return match
    r = ctx.route(node, dst)
    by_route = next((p for p in peers if r.get("via") and _in(r["via"], p.allowed_ips)), None)
    return by_route or (peers[0] if len(peers) == 1 else None)


def _tunnel_send(ctx: Context, h: Hop, phase: str) -> Verdict:
    """The packet went into wg0 and no datagram carried it out."""
    node, wg = h.node, h.iface
    peers = [p for w in ctx.facts[node].wg for p in w.peers]
    cover = [p for p in peers if p.allowed_ips and _in(h.dst, p.allowed_ips)]
    params = {"node": node, "iface": wg, "dst": h.dst, "src": h.src}
    if not cover:
        v = Verdict("wg-allowed-ips", _stop(node, wg, phase), params=params)
        v.add(node, "capture", f"{h.summary} went into {wg}; no WireGuard datagram left {node} for it")
        for p in peers:
            v.add(node, "wireguard", f"peer {ctx.node_of_key(p.public_key) or p.public_key[:8]}: "
                                     f"allowed ips {','.join(p.allowed_ips) or '(none)'}")
        # the peer the route points at (its tunnel address is in that peer's allowed-ips)
        target = _peer_for(ctx, node, h.dst, peers)
        if target:
            nets = target.allowed_ips + [_covering_net(ctx, h.dst)]
            v.fix = [{"node": node, "command": f"wg set {wg} peer {target.public_key} allowed-ips {','.join(nets)}"}]
            v.params["peer"] = ctx.node_of_key(target.public_key) or "?"
        return v
    p = cover[0]
    peer_node = ctx.node_of_key(p.public_key)
    params["peer"] = peer_node or p.public_key[:8] + "…"
    v = Verdict("wg-no-handshake", _stop(node, wg, phase), params=params)
    v.add(node, "capture", f"{h.summary} went into {wg}; no WireGuard data datagram carried it")
    age = f"{int(ctx.now - p.latest_handshake)} s ago" if p.latest_handshake and ctx.now else \
        ("never" if not p.latest_handshake else "long ago")
    v.add(node, "wireguard", f"peer {params['peer']}: endpoint {p.endpoint or '(none)'}, latest handshake {age}")
    hs = [x for x in ctx.res.handshakes if x.node == node and x.dir == "out" and "initiation" in x.summary]
    if hs:
        v.add(node, "capture", f"{len(hs)} handshake initiation(s) sent: {hs[0].summary}")
    v.fix = _peer_fix(ctx, node, wg, p, peer_node)
    if peer_node and _peer_as_declared(ctx, node, p, peer_node):
        # Nothing to change here: follow the handshake to the other side and ask it.
        arrived = [x for x in ctx.res.handshakes if x.node == peer_node and x.dir == "in"]
        r = _tunnel_receive(ctx, arrived[-1], phase, sender=node) if arrived else \
            _remote_state(ctx, node, peer_node, phase)
        if r is not None and r.cause != "inconsistent":
            r.evidence = v.evidence + r.evidence
            return r
        v.fix = []
    if peer_node is None:
        v.params["peer"] = f"the peer with key {p.public_key[:12]}…"
        v.add(node, "wireguard", f"the key {p.public_key[:12]}… belongs to no node of this lab")
    return _maybe_link_down(ctx, v, p, node)


def _remote_state(ctx: Context, sender: str, remote: str, phase: str) -> Verdict | None:
    """No handshake was even attempted during the probe (WireGuard sends at most one per 5 s, and
    gives up after 90 s until new data asks again): judge the far side by its configuration."""
    f = ctx.facts.get(remote)
    if f is None or not f.wg:
        return None
    wg, listen = f.wg[0].name, f.wg[0].listen_port
    public = next((i for i in ctx.lab.nodes[remote].addresses), None)
    for c in f.rules:
        words = c.rule.split()
        if c.table != "filter" or c.chain != "INPUT" or c.target not in ("DROP", "REJECT"):
            continue
        if c.rule.startswith("policy"):
            continue        # a DROP policy usually has ACCEPT rules before it; counters would tell
        port = words[words.index("--dport") + 1] if "--dport" in words else None
        proto = words[words.index("-p") + 1] if "-p" in words else None
        if (proto in (None, "udp")) and (port in (None, str(listen))):
            v = Verdict("input-filtered", _stop(remote, public, phase),
                        params={"node": remote, "iface": public, "rule": c.rule})
            v.add(remote, "iptables", f"INPUT {c.rule}: drops WireGuard's UDP port {listen} "
                                      f"(no handshake was attempted during this probe to count it)")
            v.fix = [_undo_rule(remote, c, "INPUT")]
            return v
    link = f.links.get(wg, {"up": True})
    if not link["up"]:
        v = Verdict("link-down", _stop(remote, wg, phase), params={"node": remote, "iface": wg})
        v.add(remote, "link", f"{wg} is down")
        v.fix = [{"node": remote, "command": f"ip link set {wg} up"}]
        return v
    if sender in ctx.keys and ctx.keys[sender] not in {p.public_key for w in f.wg for p in w.peers}:
        mp = ctx.model_peer(remote, sender)
        wrong = [p for w in f.wg for p in w.peers if ctx.node_of_key(p.public_key) is None]
        v = Verdict("wg-no-handshake", _stop(remote, wg, phase), params={"node": remote, "iface": wg, "peer": sender})
        v.add(remote, "wireguard", f"no peer with {sender}'s key on {remote}")
        if mp:
            v.fix = [{"node": remote, "command": _wg_peer_command(
                wg, ctx.keys[sender], mp.allowed_ips, None, mp.keepalive, wrong[0].public_key if wrong else None)}]
        return v
    return None


def _wg_peer_command(wg: str, key: str, allowed, endpoint: str | None = None,
                     keepalive: int | None = None, remove: str | None = None) -> str:
    """One ``wg set`` line that (re)declares a peer, dropping a wrong one first."""
    cmd = f"wg set {wg}" + (f" peer {remove} remove" if remove else "")
    cmd += f" peer {key} allowed-ips {','.join(allowed)}"
    if endpoint:
        cmd += f" endpoint {endpoint}"
    if keepalive:
        cmd += f" persistent-keepalive {keepalive}"
    return cmd


def _undo_rule(node: str, c, chain: str) -> dict:
    """The fix for a firewall rule or policy that dropped the probe."""
    if c.rule.startswith("policy"):
        return {"node": node, "command": f"iptables -P {chain} ACCEPT"}
    return {"node": node, "command": f"iptables -D {c.rule[3:]}"}


def _peer_as_declared(ctx: Context, node: str, p, peer_node: str) -> bool:
    """Is this peer entry what the lab file declares (right key, right endpoint)?"""
    mp = ctx.model_peer(node, peer_node)
    if mp is None or p.public_key != ctx.keys.get(peer_node):
        return False
    return not mp.endpoint or p.endpoint == endpoint_of(ctx.lab, mp.endpoint)


def _peer_fix(ctx: Context, node: str, wg: str, p, peer_node: str | None) -> list[dict]:
    """Re-declare the peer as the lab file has it: the right key, endpoint and allowed-ips."""
    want_node = peer_node
    if want_node is None:
        # the wrong key: the lab file's peer with an endpoint (the hub) for this node
        want_node = next((pp.peer for w in ctx.lab.nodes[node].wireguard.values() for pp in w.peers), None)
    if not want_node or want_node not in ctx.keys:
        return []
    mp = ctx.model_peer(node, want_node)
    right_key = ctx.keys[want_node]
    allowed = p.allowed_ips or (mp.allowed_ips if mp else [])
    endpoint = endpoint_of(ctx.lab, mp.endpoint) if mp and mp.endpoint else None
    return [{"node": node, "command": _wg_peer_command(
        wg, right_key, allowed, endpoint, mp.keepalive if mp else None,
        p.public_key if p.public_key != right_key else None)}]


def _maybe_link_down(ctx: Context, v: Verdict, p, node: str) -> Verdict:
    peer_node = ctx.node_of_key(p.public_key)
    if peer_node and peer_node in ctx.facts:
        wg = ctx.wg_iface(peer_node)
        link = ctx.facts[peer_node].links.get(wg or "")
        if link is not None and not link["up"]:
            d = Verdict("link-down", _stop(peer_node, wg, v.stop["direction"]),
                        params={"node": peer_node, "iface": wg}, evidence=v.evidence)
            d.add(peer_node, "link", f"{wg} is down")
            d.fix = [{"node": peer_node, "command": f"ip link set {wg} up"}]
            return d
    return v


def _tunnel_receive(ctx: Context, h: Hop, phase: str, sender: str | None = None) -> Verdict:
    """A WireGuard datagram reached the node at the other end; nothing came out of its wg0.
    ``sender``: the node that sent it (for a handshake message, which carries no inner packet)."""
    node, inner = h.node, _carried_by(ctx, h)
    f = ctx.facts[node]
    wg = ctx.wg_iface(node)
    sender = sender or inner.node
    params = {"node": node, "iface": h.iface, "wg": wg, "sender": sender, "src": inner.src, "dst": inner.dst}
    port = h.dport
    listen = f.wg[0].listen_port if f.wg else None
    # 1. the firewall of the tunnel endpoint
    drops = _dropping_hits(f, "filter", "INPUT")
    if drops:
        c, n = drops[0]
        v = Verdict("input-filtered", _stop(node, h.iface, phase), params={**params, "rule": c.rule})
        v.add(node, "capture", f"{h.summary} arrived on {h.iface}")
        v.add(node, "iptables", f"{c.rule} matched {n} packet(s) during the probe")
        v.fix = [{"node": node, "command": f"iptables -D {c.rule[3:]}" if not c.rule.startswith("policy")
                  else f"iptables -I INPUT -p udp --dport {listen} -j ACCEPT"}]
        return v
    # 2. its wg0 is down (wireguard-go then closes its port too)
    link = f.links.get(wg or "")
    if link is not None and not link["up"]:
        v = Verdict("link-down", _stop(node, wg, phase), params={**params, "iface": wg})
        v.add(node, "capture", f"{h.summary} arrived on {h.iface}")
        v.add(node, "link", f"{wg} is down")
        v.fix = [{"node": node, "command": f"ip link set {wg} up"}]
        return v
    # 3. sent to a port where WireGuard does not listen: the sender's endpoint is wrong
    if listen and port and port != listen:
        sender_wg = ctx.wg_iface(sender)
        p = next((p for w in ctx.facts[sender].wg for p in w.peers if ctx.node_of_key(p.public_key) == node), None)
        v = Verdict("wg-no-handshake", _stop(sender, sender_wg, phase), params={**params, "node": sender,
                    "iface": sender_wg, "peer": node, "port": port, "listen": listen})
        v.add(node, "capture", f"{h.summary}: to port {port}, but WireGuard on {node} listens on {listen}")
        if p:
            v.add(sender, "wireguard", f"peer {node}: endpoint {p.endpoint}")
            v.fix = _peer_fix(ctx, sender, sender_wg, p, node)
        return v
    # 4. the receiving side does not know the sender's key
    known = {p.public_key for w in f.wg for p in w.peers}
    if sender in ctx.keys and ctx.keys[sender] not in known:
        wrong = [p for w in f.wg for p in w.peers if ctx.node_of_key(p.public_key) is None]
        v = Verdict("wg-no-handshake", _stop(node, wg, phase), params={**params, "peer": sender})
        v.add(node, "capture", f"{h.summary} arrived; WireGuard on {node} has no peer with {sender}'s key")
        v.add(node, "wireguard", "peers: " + ", ".join(ctx.node_of_key(p.public_key) or p.public_key[:12] + "… (unknown key)"
                                                       for w in f.wg for p in w.peers))
        mp = ctx.model_peer(node, sender)
        if mp:                # endpoint: where the sender's datagrams came from (through its NAT)
            v.fix = [{"node": node, "command": _wg_peer_command(
                wg, ctx.keys[sender], mp.allowed_ips, f"{h.src}:{h.sport}" if h.sport else None,
                mp.keepalive, wrong[0].public_key if wrong else None)}]
        return v
    # 5. cryptokey routing on the receiving side: the inner source is not the sender's
    p = next((p for w in f.wg for p in w.peers if p.public_key == ctx.keys.get(sender)), None)
    if p and inner is not h and not _in(inner.src, p.allowed_ips or ["255.255.255.255/32"]):
        v = Verdict("wg-allowed-ips", _stop(node, wg, phase), params={**params, "peer": sender})
        v.add(node, "capture", f"{h.summary} arrived; nothing came out of {wg}")
        v.add(node, "wireguard", f"peer {sender}: allowed ips {','.join(p.allowed_ips) or '(none)'} "
                                 f"do not contain the source {inner.src}")
        nets = p.allowed_ips + [_covering_net(ctx, inner.src)]
        v.fix = [{"node": node, "command": f"wg set {wg} peer {p.public_key} allowed-ips {','.join(nets)}"}]
        return v
    return _inconsistent(ctx, f"the datagram reached {node} and every check there says it should pass", h)


def untranslated_dst(ctx: Context, h: Hop) -> str:
    """A reply addressed to a node that masqueraded the request is really for the request's
    original source: connection tracking puts that address back before forwarding."""
    if h.role != "reply":
        return h.dst
    reqs = [r for r in ctx.res.hops if r.role == "request" and r.layer == "inner" and r.node == h.node]
    ins = [r for r in reqs if r.dir == "in"]
    outs = [r for r in reqs if r.dir == "out"]
    if ins and outs and outs[-1].src == h.dst and ins[0].src != outs[-1].src:
        return ins[0].src
    return h.dst


def _forwarding(ctx: Context, h: Hop, phase: str) -> Verdict:
    """The packet entered a node that should forward it, and never left."""
    node, f = h.node, ctx.facts[h.node]
    dst = untranslated_dst(ctx, h)
    params = {"node": node, "iface": h.iface, "src": h.src, "dst": dst}
    r = ctx.route(node, dst, h.src, h.iface)
    seen = f"{h.summary} entered {node} on {h.iface} and never left"
    back = ctx.route(node, h.src)
    key_all = f.sysctl.get("net.ipv4.conf.all.rp_filter", "0")
    key_if = f.sysctl.get(f"net.ipv4.conf.{h.iface}.rp_filter", "0")
    strict = max(int(key_all or 0), int(key_if or 0)) == 1
    # The kernel's input route lookup fails (EXDEV/EINVAL) when the reverse-path check does.
    if strict and not r.get("ok", True) and back.get("ok") and back.get("dev") != h.iface:
        v = Verdict("rp-filter", _stop(node, h.iface, phase),
                    params={**params, "back_dev": back.get("dev"), "back_via": back.get("via") or "-"})
        v.add(node, "capture", seen)
        v.add(node, "sysctl", f"net.ipv4.conf.all.rp_filter = {key_all}, net.ipv4.conf.{h.iface}.rp_filter = {key_if}")
        v.add(node, "route", f"ip route get {dst} from {h.src} iif {h.iface}: {r.get('error')}")
        v.add(node, "route", f"ip route get {h.src}: via {back.get('via')} dev {back.get('dev')} "
                             f"(the packet came in on {h.iface})")
        prefix = ctx.routes.get((node, "match", h.src))
        if prefix:
            v.fix = [{"node": node, "command": f"ip route replace {prefix} dev {h.iface}"}]
        else:
            v.fix = [{"node": node, "command": "sysctl -w net.ipv4.conf.all.rp_filter=2"},
                     {"node": node, "command": f"sysctl -w net.ipv4.conf.{h.iface}.rp_filter=2"}]
        return v
    if f.sysctl.get("net.ipv4.ip_forward") == "0":
        v = Verdict("forwarding-disabled", _stop(node, h.iface, phase), params=params)
        v.add(node, "capture", seen)
        v.add(node, "sysctl", "net.ipv4.ip_forward = 0")
        v.fix = [{"node": node, "command": "sysctl -w net.ipv4.ip_forward=1"}]
        return v
    drops = _dropping_hits(f, "filter", "FORWARD")
    if drops:
        c, n = drops[0]
        out = r.get("dev")
        v = Verdict("forward-filtered", _stop(node, h.iface, phase), params={**params, "out": out or "?",
                                                                              "rule": c.rule})
        v.add(node, "capture", seen)
        v.add(node, "iptables", f"FORWARD {c.rule} matched {n} packet(s) during the probe")
        v.add(node, "route", f"ip route get {dst} from {h.src} iif {h.iface}: dev {out}")
        if phase == "reply":
            for line in f.conntrack:
                v.add(node, "conntrack", line)
        if c.rule.startswith("policy"):
            rule = f"-A FORWARD -i {h.iface} -j ACCEPT" if h.iface == ctx.wg_iface(node) or not out \
                else f"-A FORWARD -i {h.iface} -o {out} -j ACCEPT"
            v.fix = [{"node": node, "command": f"iptables -t filter {rule}"}]
        else:
            v.fix = [_undo_rule(node, c, "FORWARD")]
        return v
    if not r.get("ok", True) and r.get("error"):
        v = Verdict("route-missing", _stop(node, h.iface, phase), params={**params, "iface": h.iface, "wg": ctx.wg_iface(node) or "-"})
        v.add(node, "capture", seen)
        v.add(node, "route", f"ip route get {dst} from {h.src} iif {h.iface}: {r['error']}")
        v.fix = _route_fix(ctx, node, dst)
        return v
    out = r.get("dev")
    link = f.links.get(out or "", {})
    far = _far_end(ctx, node, out)
    if far and far[0] in ctx.facts and not ctx.facts[far[0]].links.get(far[1], {"up": True})["up"]:
        v = Verdict("link-down", _stop(far[0], far[1], phase), params={**params, "node": far[0], "iface": far[1]})
        v.add(node, "capture", seen)
        v.add(far[0], "link", f"{far[1]} is down: {node} sends by {out} and nothing takes it on the other end")
        v.fix = [{"node": far[0], "command": f"ip link set {far[1]} up"}]
        return v
    if link and not link.get("up"):
        v = Verdict("link-down", _stop(node, out, phase), params={**params, "iface": out})
        v.add(node, "link", f"{out} is down")
        v.fix = [{"node": node, "command": f"ip link set {out} up"}]
        return v
    if link and ctx.res.probe.get("size") and h.length > link.get("mtu", 65535):
        v = Verdict("mtu", _stop(node, out, phase), params={**params, "iface": out, "mtu": link["mtu"],
                                                              "size": h.length})
        v.add(node, "link", f"{out} mtu {link['mtu']} < packet {h.length} bytes with DF")
        v.fix = _mtu_fix(ctx, node, out)
        return v
    return _inconsistent(ctx, f"{node} forwards {dst} by dev {out}, forwarding is on and no rule dropped it", h)


def _far_end(ctx: Context, node: str, iface: str | None) -> tuple[str, str] | None:
    """The other end of the cable on ``node``'s ``iface`` (for a bridge: None, many ends)."""
    for link in ctx.lab.links:
        for a, b in ((link.a, link.b), (link.b, link.a)):
            if a.node == node and a.iface == iface:
                return b.node, b.iface
    return None


def _at_destination(ctx: Context, h: Hop, phase: str) -> Verdict:
    node, f = h.node, ctx.facts[h.node]
    drops = _dropping_hits(f, "filter", "INPUT")
    if drops:
        c, n = drops[0]
        v = Verdict("input-filtered", _stop(node, h.iface, phase), params={"node": node, "iface": h.iface,
                                                                           "rule": c.rule, "src": h.src, "dst": h.dst})
        v.add(node, "capture", f"{h.summary} arrived on {node} {h.iface}; no answer left")
        v.add(node, "iptables", f"{c.rule} matched {n} packet(s) during the probe")
        v.fix = [_undo_rule(node, c, "INPUT")]
        return v
    out_drops = [(c, n) for c, n in f.hits if c.table == "filter" and c.chain == "OUTPUT"
                 and c.target in ("DROP", "REJECT")]
    if out_drops:                      # it answered, and its own firewall kept the answer in
        c, n = out_drops[0]
        v = Verdict("output-filtered", _stop(node, h.iface, "reply"), params={"node": node, "rule": c.rule})
        v.add(node, "capture", f"{h.summary} arrived on {node} {h.iface}; no answer left")
        v.add(node, "iptables", f"OUTPUT {c.rule} matched {n} packet(s) during the probe")
        v.fix = [_undo_rule(node, c, "OUTPUT")]
        return v
    return _inconsistent(ctx, f"{h.dst} got the request on {node} and nothing explains why it did not answer", h)


def _next_link(ctx: Context, h: Hop, phase: str) -> Verdict | None:
    """It left a node by a cable and never arrived: is the other end down?"""
    for link in ctx.lab.links:
        for a, b in ((link.a, link.b), (link.b, link.a)):
            if a.node == h.node and (a.iface == h.iface or link.bridge == h.iface):
                f = ctx.facts.get(b.node)
                l = f.links.get(b.iface) if f else None
                if l is not None and not l["up"]:
                    v = Verdict("link-down", _stop(b.node, b.iface, phase), params={"node": b.node, "iface": b.iface})
                    v.add(h.node, "capture", f"{h.summary} left {h.node} on {h.iface}")
                    v.add(b.node, "link", f"{b.iface} is down")
                    v.fix = [{"node": b.node, "command": f"ip link set {b.iface} up"}]
                    return v
    return None


def _inconsistent(ctx: Context, why: str, h: Hop | None = None) -> Verdict:
    last = ctx.res.last_seen
    stop = _stop(last.node, last.iface, last.phase) if last else _stop(ctx.res.src, None, "request")
    v = Verdict("inconsistent", stop, params={"node": stop["node"], "why": why})
    v.add(stop["node"], "capture", ctx.res.story)
    v.add(stop["node"], "state", why)
    return v
