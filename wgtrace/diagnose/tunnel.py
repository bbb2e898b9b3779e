"""Checks at the two ends of a WireGuard tunnel: the packet went into a WireGuard interface and
no datagram carried it (send), or a datagram reached its endpoint and nothing came out (receive).

WireGuard drops silently, so the evidence is the configuration on both sides: which peer's
allowed-ips cover the address, whose keys each side knows, where each side sends, when each
side last completed a handshake.
"""
from __future__ import annotations

from . import fixes
from .at_source import link_restore
from .context import Context, in_nets
from .verdict import Stop, Verdict

SESSION_LIFE = 180          # REJECT_AFTER_TIME: a session is unusable after this many seconds
REKEY_AFTER = 120           # REKEY_AFTER_TIME: a session this old is replaced when data is sent


def _peer_list(ctx: Context, node: str, wg: str | None = None):
    return [p for w in ctx.f(node).wg if wg is None or w.name == wg for p in w.peers]


def _who(ctx: Context, key: str) -> str:
    return ctx.key_owner(key) or key[:12] + "…"


def send(ctx: Context, h, phase: str) -> Verdict:
    """The packet went into ``h.iface`` and no WireGuard datagram left the node for it."""
    node, wg = h.node, h.iface
    peers = _peer_list(ctx, node, wg)
    cover = [p for p in peers if in_nets(h.dst, p.allowed_ips)]
    params = {"node": node, "iface": wg, "dst": h.dst, "src": h.src}
    if not cover:
        want = ctx.peer_node_for(node, h.dst)
        if want is None and peers:           # no lab file: the peer the route points at, or the only one
            r = ctx.route(node, h.dst)
            by_route = next((p for p in peers if r.via and in_nets(r.via, p.allowed_ips)), None)
            target = by_route or (peers[0] if len(peers) == 1 else None)
            want = ctx.key_owner(target.public_key) if target else None
        v = Verdict("wg-allowed-ips", Stop(node, wg, phase), params={**params, "peer": want or "?"})
        v.add(node, "capture", "into-wg-no-datagram", summary=h.summary, iface=wg, node=node)
        for p in peers:
            v.add(node, "wireguard", "peer-allowed", peer=_who(ctx, p.public_key),
                  ips=",".join(p.allowed_ips) or "(none)")
        if want:
            current = next((p for p in peers if p.public_key == ctx.key_of(want)), None)
            v.fixes(node, *fixes.peer_fix(ctx, node, wg, current, want, need=[ctx.covering_net(h.dst)]))
        return v
    p = cover[0]
    peer_node = ctx.key_owner(p.public_key)
    params["peer"] = peer_node or p.public_key[:12] + "…"
    # the node's own firewall refused WireGuard's datagram (a kill switch without the tunnel's mark)
    out_drops = [(c, n) for c, n in ctx.f(node).hits if c.table == "filter" and c.chain == "OUTPUT" and c.drops]
    if out_drops:
        c, n = out_drops[0]
        v = Verdict("output-filtered", Stop(node, wg, phase), params={**params, "rule": c.rule})
        v.add(node, "capture", "into-wg-no-datagram", summary=h.summary, iface=wg, node=node)
        v.add(node, "iptables", "rule-matched", chain="OUTPUT", rule=c.rule, n=n)
        v.add(node, "wireguard", "peer-endpoint", peer=params["peer"], endpoint=p.endpoint or "(none)")
        if c.is_policy:
            port = p.endpoint.rsplit(":", 1)[1] if p.endpoint else None
            v.fixes(node, ("iptables", "-A", "OUTPUT", "-p", "udp", *(("--dport", port) if port else ()),
                           "-j", "ACCEPT"))
        else:
            v.fixes(node, c.undo())
        return v
    v = Verdict("wg-no-handshake", Stop(node, wg, phase), params=params)
    v.add(node, "capture", "into-wg-no-data", summary=h.summary, iface=wg)
    v.add(node, "wireguard", "peer-handshake", peer=params["peer"], endpoint=p.endpoint or "(none)",
          age=ctx.handshake_age(p))
    sent = [x for x in ctx.res.handshakes if x.node == node and x.dir == "out" and x.wg_type == 1]
    if sent:
        v.add(node, "capture", "handshakes-sent", n=len(sent), summary=sent[0].summary)
    if peer_node is None:
        want = ctx.peer_node_for(node, h.dst, p)
        v.params["peer"] = want or params["peer"]
        v.add(node, "wireguard", "unknown-key", key=p.public_key[:12] + "…")
        if want:
            cmds = fixes.peer_fix(ctx, node, wg, p, want)
            v.fixes(node, *cmds)
            if cmds and "endpoint" not in cmds[-1]:
                _restart_from(ctx, v, want, node)
        return v
    declared = ctx.model_endpoint(node, peer_node)
    if declared and p.endpoint != declared:
        v.add(node, "wireguard", "endpoint-not-declared", peer=peer_node, endpoint=p.endpoint or "(none)",
              declared=declared)
        v.fixes(node, *fixes.peer_fix(ctx, node, wg, p, peer_node))
        return v
    # Nothing to change here: follow the handshake to the other side and ask it.
    arrived = [x for x in ctx.res.handshakes if x.node == peer_node and x.dir == "in"]
    far = receive(ctx, arrived[-1], phase, sender=node) if arrived else remote_state(ctx, node, peer_node, phase, p)
    if far is not None and far.cause != "inconsistent":
        far.evidence = v.evidence + far.evidence
        return far
    return v


def _restart_from(ctx: Context, v: Verdict, starter: str, node: str) -> None:
    """``node``'s new entry for ``starter`` has no endpoint, so only ``starter`` can start the
    tunnel; if ``starter`` still believes in its old session with ``node`` it would wait for up to
    two minutes: make it start a new one (its entry removed and declared again)."""
    entry = next((p for p in ctx.peers(starter) if p.public_key == ctx.key_of(node)), None)
    if entry is None or not entry.endpoint or not entry.latest_handshake or not ctx.now \
            or ctx.now - entry.latest_handshake >= SESSION_LIFE:
        return
    wg = next((w.name for w in ctx.f(starter).wg if entry in w.peers), None)
    if wg:
        v.fixes(starter, ("wg", "set", wg, "peer", entry.public_key, "remove"))
        v.fixes(starter, *fixes.peer_fix(ctx, starter, wg, None, node, need=entry.allowed_ips))


def _longest(peers, dst: str):
    """The peer WireGuard gives ``dst`` to: the longest allowed-ips prefix that holds it."""
    best, best_len = None, -1
    for p in peers:
        for a in p.allowed_ips:
            plen = int(a.split("/")[1]) if "/" in a else 32
            if plen > best_len and in_nets(dst, [a]):
                best, best_len = p, plen
    return best


def wrong_peer(ctx: Context) -> Verdict | None:
    """A node sent a tunnel-bound packet to another peer than the lab file's, because that peer's
    allowed-ips hold the destination now: an address belongs to one peer of an interface only,
    and a ``wg set`` that names a network another peer has takes it from that peer, silently."""
    res = ctx.res
    for u in res.hops:
        if u.layer != "underlay" or u.dir != "out" or u.carries is None:
            continue
        i = res.hops[u.carries]
        if i.node != u.node or i.layer != "inner" or not ctx.is_wg(i.node, i.iface):
            continue
        node, wg, dst = i.node, i.iface, i.dst
        got = _longest(_peer_list(ctx, node, wg), dst)
        n = ctx.lab.nodes.get(node)
        w = n.wireguard.get(wg) if n else None
        if got is None or w is None or not ctx.declared(w.stage):
            continue
        meant = _longest([p for p in w.peers if ctx.declared(p.stage)], dst)
        got_node = ctx.key_owner(got.public_key)
        if meant is None or got_node is None or got_node == meant.peer:
            continue
        want = meant.peer
        v = Verdict("wg-allowed-ips", Stop(node, wg, i.role),
                    params={"node": node, "iface": wg, "dst": dst, "src": i.src, "peer": want})
        v.add(node, "capture", "sent-to-other-peer", summary=i.summary, iface=wg, got=got_node, dst=dst,
              ips=",".join(got.allowed_ips), want=want)
        current = next((p for p in _peer_list(ctx, node, wg) if p.public_key == ctx.key_of(want)), None)
        if current is not None:
            v.add(node, "wireguard", "peer-allowed", peer=want, ips=",".join(current.allowed_ips) or "(none)")
        return v.fixes(node, *fixes.peer_fix(ctx, node, wg, current, want, need=[ctx.covering_net(dst)]))
    return None


def stale(ctx: Context, node: str, other: str, phase: str, stop_iface: str | None) -> Verdict | None:
    """``other`` believes in a session with ``node`` that ``node`` no longer has (its peer was
    removed and added again, or WireGuard restarted): ``other`` sends into a session nobody can
    open, and ``node`` may not even know where ``other`` is."""
    mine = next((p for p in ctx.peers(node) if p.public_key == ctx.key_of(other)), None)
    theirs = next((p for p in ctx.peers(other) if p.public_key == ctx.key_of(node)), None)
    if mine is None or theirs is None or not theirs.latest_handshake or not ctx.now:
        return None
    their_age = ctx.now - theirs.latest_handshake
    if their_age >= SESSION_LIFE or (mine.latest_handshake and mine.latest_handshake >= theirs.latest_handshake - 1):
        return None
    heal = max(0, int(REKEY_AFTER - their_age))
    v = Verdict("wg-stale-session", Stop(node, stop_iface, phase),
                params={"node": node, "peer": other, "age": int(their_age), "heal": heal,
                        "iface": stop_iface})
    v.add(other, "wireguard", "peer-handshake", peer=node, endpoint=theirs.endpoint or "(none)",
          age=ctx.handshake_age(theirs))
    v.add(node, "wireguard", "peer-handshake", peer=other, endpoint=mine.endpoint or "(none)",
          age=ctx.handshake_age(mine))
    # the side that knows where the other is starts the new handshake
    starter, target, entry = (other, node, theirs) if theirs.endpoint or not mine.endpoint else (node, other, mine)
    wg = next((w.name for w in ctx.f(starter).wg if entry in w.peers), None)
    if wg:
        v.fixes(starter, ("wg", "set", wg, "peer", entry.public_key, "remove"))
        v.fixes(starter, *fixes.peer_fix(ctx, starter, wg, None, target, need=entry.allowed_ips))
    return v


def receive(ctx: Context, h, phase: str, sender: str | None = None) -> Verdict:
    """A WireGuard datagram reached the node at the other end; nothing came out of its tunnel.
    ``sender``: the node that sent it (for a handshake message, which carries no inner packet)."""
    from .rules import inconsistent
    node, inner = h.node, ctx.carried_by(h)
    f = ctx.f(node)
    sender = sender or inner.node
    port = h.dport
    listening = next((w for w in f.wg if w.listen_port == port), None)
    wg = listening.name if listening else ctx.wg_iface(node)
    params = {"node": node, "iface": h.iface, "wg": wg or "-", "sender": sender, "src": inner.src, "dst": inner.dst}
    # 0. reverse-path filtering: the node routes the datagram's source back by another interface
    v = _rp_filtered(ctx, h, phase, params)
    if v:
        return v
    # 1. the firewall of the tunnel endpoint (when WireGuard listens there: a datagram sent to a
    #    port where it does not is the sender's mistake, and opening the firewall would not help)
    drops = [(c, n) for c, n in f.hits if c.table == "filter" and c.chain == "INPUT" and c.drops]
    if drops and (listening is not None or not f.wg):
        c, n = drops[0]
        v = Verdict("input-filtered", Stop(node, h.iface, phase), params={**params, "rule": c.rule})
        v.add(node, "capture", "arrived-on", summary=h.summary, iface=h.iface)
        v.add(node, "iptables", "rule-matched", chain="INPUT", rule=c.rule, n=n)
        if c.is_policy:
            v.fixes(node, ("iptables", "-I", "INPUT", "-p", "udp", "--dport", str(port), "-j", "ACCEPT"))
        else:
            v.fixes(node, c.undo())
        return v
    # 2. the interface is gone, down, or has no address
    for name in ([listening.name] if listening else ctx.model_wg(node) or ([wg] if wg else [])):
        gone = link_restore(ctx, node, name, phase)
        if gone:
            gone.lead(node, "capture", "arrived-on", summary=h.summary, iface=h.iface)
            return gone
    # 3. sent to a port where WireGuard does not listen: the port the lab file gives it (it was
    #    changed here, and its peers still send there), else the sender's endpoint is wrong
    n = ctx.lab.nodes.get(node)
    declared = next((w for w in (n.wireguard.values() if n else ()) if w.listen_port == port
                     and ctx.declared(w.stage)), None)
    moved = next((w for w in f.wg if declared and w.name == declared.name), None)
    if listening is None and moved is not None:
        v = Verdict("wg-no-handshake", Stop(node, moved.name, phase), params={**params, "wg": moved.name,
                                                                            "peer": sender})
        v.add(node, "capture", "wrong-port", summary=h.summary, port=port, node=node, listen=moved.listen_port)
        v.add(node, "wireguard", "listen-port-moved", iface=moved.name, listen=moved.listen_port, port=port)
        return v.fixes(node, ("wg", "set", moved.name, "listen-port", str(port)))
    if listening is None and f.wg:
        listen = f.wg[0].listen_port
        sender_peer = next((p for p in ctx.peers(sender) if ctx.key_owner(p.public_key) == node), None)
        sender_wg = next((w.name for w in ctx.f(sender).wg if sender_peer in w.peers), None) or ctx.wg_iface(sender)
        v = Verdict("wg-no-handshake", Stop(sender, sender_wg, phase),
                    params={**params, "node": sender, "iface": sender_wg, "peer": node})
        v.add(node, "capture", "wrong-port", summary=h.summary, port=port, node=node, listen=listen)
        if sender_peer:
            v.add(sender, "wireguard", "peer-endpoint", peer=node, endpoint=sender_peer.endpoint or "(none)")
            ep = ctx.model_endpoint(sender, node)
            if not ep and sender_peer.endpoint:
                ep = sender_peer.endpoint.rsplit(":", 1)[0] + f":{listen}"
            v.fixes(sender, *fixes.peer_fix(ctx, sender, sender_wg, sender_peer, node, endpoint=ep))
        return v
    # 4. the receiving side does not know the sender's key
    known = {p.public_key for p in _peer_list(ctx, node, wg)}
    sender_key = ctx.key_of(sender)
    if sender_key and sender_key not in known:
        mine = [a for l in ctx.f(sender).links.values() if l.name in ctx.f(sender).wg_names for a in l.addresses]
        stand_in = next((p for p in _peer_list(ctx, node, wg) if ctx.key_owner(p.public_key) is None and
                         any(in_nets(a.split("/")[0], p.allowed_ips) for a in mine)), None)
        v = Verdict("wg-no-handshake", Stop(node, wg, phase), params={**params, "peer": sender})
        v.add(node, "capture", "no-peer-key", summary=h.summary, node=node, sender=sender)
        v.add(node, "wireguard", "peers", peers=", ".join(_who(ctx, p.public_key) for p in _peer_list(ctx, node, wg))
              or "(none)")
        # endpoint: where the sender's datagrams came from (through its NAT), unless the lab file says
        ep = ctx.model_endpoint(node, sender) or (f"{h.src}:{h.sport}" if h.sport else None)
        need = [str(a.split("/")[0]) + "/32" for a in mine]
        cmds = fixes.peer_fix(ctx, node, wg, stand_in, sender, need=need, endpoint=ep)
        v.fixes(node, *cmds)
        if cmds and not ("endpoint" in cmds[-1] and "persistent-keepalive" in cmds[-1]):
            _restart_from(ctx, v, sender, node)     # nothing makes this side start the new session
        return v
    # 5. cryptokey routing on the receiving side: the inner source is not the sender's
    p = next((p for p in _peer_list(ctx, node, wg) if p.public_key == sender_key), None)
    if p and inner is not h and not in_nets(inner.src, p.allowed_ips or ["255.255.255.255/32"]):
        v = Verdict("wg-allowed-ips", Stop(node, wg, phase), params={**params, "peer": sender})
        v.add(node, "capture", "nothing-out-of-wg", summary=h.summary, wg=wg)
        v.add(node, "wireguard", "allowed-not-source", peer=sender, ips=",".join(p.allowed_ips) or "(none)",
              src=inner.src)
        v.fixes(node, *fixes.peer_fix(ctx, node, wg, p, sender, need=[ctx.covering_net(inner.src)]))
        return v
    # 6. a session the sender still uses and this side has lost
    s = stale(ctx, node, sender, phase, wg)
    if s:
        s.lead(node, "capture", "arrived-on", summary=h.summary, iface=h.iface)
        return s
    return inconsistent(ctx, "datagram-passes", node=node)


def _rp_filtered(ctx: Context, h, phase: str, params: dict) -> Verdict | None:
    """The datagram arrived on an interface by which the node does not route its source back, and
    rp_filter is strict: the kernel drops it before WireGuard sees it. A full tunnel does this to
    its own datagrams (unmarked, the endpoint's address is routed into the tunnel): wg-quick sets
    src_valid_mark and restores the mark from connection tracking, loose mode (2) is the usual
    answer. Any other asymmetry: the route back to the source is put right."""
    from .forward import _strict_rp
    node, f = h.node, ctx.f(h.node)
    strict, rp_all, rp_if = _strict_rp(f, h.iface)
    r = ctx.route(node, h.dst, h.src, h.iface)
    back = ctx.route(node, h.src)
    if not strict or r.ok or not back.ok or back.dev == h.iface:
        return None
    v = Verdict("rp-filter", Stop(node, h.iface, phase),
                params={**params, "src": h.src, "dst": h.dst, "back_dev": back.dev, "back_via": back.via or "-"})
    v.add(node, "capture", "arrived-on", summary=h.summary, iface=h.iface)
    v.add(node, "sysctl", "rp-sysctl", all=rp_all, iface=h.iface, value=rp_if)
    v.add(node, "route", "route-get-iif-error", dst=h.dst, src=h.src, iif=h.iface, error=r.error)
    v.add(node, "route", "route-back", src=h.src, via=back.via or "-", dev=back.dev, iface=h.iface)
    if ctx.is_wg(node, back.dev):
        v.add(node, "route", "rp-own-tunnel", src=h.src, wg=back.dev, iface=h.iface)
        v.fixes(node, ("sysctl", "-w", "net.ipv4.conf.all.rp_filter=2"))
        if rp_if == "1":
            v.fixes(node, ("sysctl", "-w", f"net.ipv4.conf.{h.iface}.rp_filter=2"))
    else:
        v.fixes(node, *fixes.restore_route(ctx, node, h.src))
    return v



def remote_state(ctx: Context, sender: str, remote: str, phase: str, peer) -> Verdict | None:
    """No handshake reached the far side during the probe (WireGuard sends at most one per 5 s, and
    gives up after 90 s until new data asks again): judge the far side by its configuration."""
    f = ctx.f(remote)
    if not f.readable:
        return None
    for name in ctx.model_wg(remote) or [w.name for w in f.wg]:
        gone = link_restore(ctx, remote, name, phase)
        if gone:
            return gone
    if not f.wg:
        return None
    w = f.wg[0]
    port = int(peer.endpoint.rsplit(":", 1)[1]) if peer.endpoint else w.listen_port
    for c in f.rules:
        if c.table != "filter" or c.chain != "INPUT" or not c.drops or c.is_policy:
            continue        # a DROP policy usually has ACCEPT rules before it; counters would tell
        dport, proto = c.option("--dport", "--destination-port"), c.option("-p", "--protocol")
        if proto in (None, "udp") and dport in (None, str(port)):
            v = Verdict("input-filtered", Stop(remote, None, phase), params={"node": remote, "iface": "-",
                                                                           "rule": c.rule})
            v.add(remote, "iptables", "input-drops-port", rule=c.rule, port=port)
            return v.fixes(remote, c.undo())
    sender_key = ctx.key_of(sender)
    if sender_key and sender_key not in {p.public_key for p in ctx.peers(remote)}:
        stand_in = next((p for p in ctx.peers(remote) if ctx.key_owner(p.public_key) is None), None)
        v = Verdict("wg-no-handshake", Stop(remote, w.name, phase), params={"node": remote, "iface": w.name,
                                                                          "peer": sender})
        v.add(remote, "wireguard", "no-peer-for", sender=sender, node=remote)
        v.fixes(remote, *fixes.peer_fix(ctx, remote, w.name, stand_in, sender))
        return v
    return stale(ctx, sender, remote, phase, ctx.wg_iface(sender)) or stale(ctx, remote, sender, phase, w.name)
