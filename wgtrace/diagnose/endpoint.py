"""Checks at the far end of a WireGuard tunnel: a datagram reached its endpoint and nothing came
out of the tunnel there (``receive``, the ordered ``RECEIVE`` checks), or no datagram reached it
during the probe and the far side is judged by its configuration (``remote_state``). A session
one side still believes in and the other lost (``stale``) is a finding of both.

WireGuard drops silently, so the evidence is the configuration on both sides: which keys each
side knows, where each side sends, whose allowed-ips hold the inner source, when each side last
completed a handshake.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .. import addr
from ..addr import in_nets
from . import firewall, fixes, roaming
from .common import (At, drops as lost, filtered, fw_kind, inconsistent, link_restore, packet, peer_list,
                     rp_dropped, rp_failed, rp_rule_verdict, rp_verdict, who)
from .context import Context
from .verdict import Stop, Verdict

SESSION_LIFE = 180          # REJECT_AFTER_TIME: a session is unusable after this many seconds
REKEY_AFTER = 120           # REKEY_AFTER_TIME: a session this old is replaced when data is sent


@dataclass
class Arrival(At):
    """A WireGuard datagram (``h``, an underlay hop) at the node it was sent to, and what the
    checks ask about it."""
    sender_node: str | None = None      # for a handshake message, which carries no inner packet
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = {"node": self.node, "iface": self.h.iface, "wg": self.wg or "-", "sender": self.sender,
                       "src": self.inner.src, "dst": self.inner.dst}

    @cached_property
    def inner(self):
        return self.ctx.carried_by(self.h)

    @property
    def sender(self) -> str:
        return self.sender_node or self.inner.node

    @cached_property
    def listening(self):
        return next((w for w in self.f.wg if w.listen_port == self.h.dport), None)

    @cached_property
    def wg(self) -> str | None:
        return self.listening.name if self.listening else self.ctx.wg_iface(self.node)

    def arrived_on(self) -> tuple:
        return ("capture", "arrived-on", {"summary": self.h.summary, "iface": self.h.iface})


def rp_filtered(a: Arrival) -> Verdict | None:
    """The datagram arrived on an interface by which the node does not route its source back, and
    rp_filter is strict: the kernel drops it before WireGuard sees it. A full tunnel does this to
    its own datagrams (unmarked, the endpoint's address is routed into the tunnel): wg-quick sets
    src_valid_mark and restores the mark from connection tracking, loose mode (2) is the usual
    answer. Any other asymmetry: the route back to the source is put right."""
    ctx, h, node = a.ctx, a.h, a.node
    failed = rp_failed(ctx, node, h.iface, h.dst, h.src)
    if failed is None:
        return _rp_rule(a)
    v = rp_verdict(ctx, node, h.iface, a.phase, h.dst, h.src, {**a.params, "src": h.src, "dst": h.dst},
                   a.arrived_on(), failed)
    back, rp_if = failed[1], failed[3]
    if ctx.is_wg(node, back.dev):
        v.add(node, "route", "rp-own-tunnel", src=h.src, wg=back.dev, iface=h.iface)
        v.fixes(node, ("sysctl", "-w", "net.ipv4.conf.all.rp_filter=2"))
        if rp_if == "1":
            v.fixes(node, ("sysctl", "-w", f"net.ipv4.conf.{h.iface}.rp_filter=2"))
    else:
        v.fixes(node, *fixes.restore_route(ctx, node, h.src))
    return v


def _rp_rule(a: Arrival) -> Verdict | None:
    """The same for a datagram a reverse-path rule of the firewall dropped (IPv6 has no rp_filter
    sysctl; either family may have such a rule): into its
    own full tunnel, the rule's loose mode (as wg-quick's own nft table does with the mark);
    otherwise the route back put right."""
    ctx, h, node = a.ctx, a.h, a.node
    dropped = rp_dropped(ctx, node, h.iface, h.src, addr.family(h.src))    # the datagram's family
    if dropped is None:
        return None
    v = rp_rule_verdict(ctx, node, h.iface, a.phase, h.src, {**a.params, "src": h.src, "dst": h.dst},
                        a.arrived_on(), dropped)
    back = dropped[2]
    if back.ok and ctx.is_wg(node, back.dev):
        v.add(node, "route", "rp-own-tunnel", src=h.src, wg=back.dev, iface=h.iface)
        return v.fixes(node, *firewall.loosen(dropped[0]))
    return v.fixes(node, *fixes.restore_route(ctx, node, h.src))


def endpoint_firewall(a: Arrival) -> Verdict | None:
    """The firewall of the tunnel endpoint (when WireGuard listens there: a datagram sent to a
    port where it does not is the sender's mistake, and opening the firewall would not help)."""
    drops = lost(a.ctx, a.node, "input", packet(a.ctx, a.node, a.h, a.phase, iif=a.h.iface))
    if not drops or not (a.listening is not None or not a.f.wg):
        return None
    c, n = drops[0]
    v = filtered("input-filtered", a.node, a.h.iface, a.phase, c, n, a.params, seen=a.arrived_on())
    if c.is_policy or c.catch_all:          # the chain's end (firewalld's final reject): a hole before it
        return v.fixes(a.node, firewall.accept(a.f.fw, "input", c.family, like=c, first=True, proto="udp",
                                               dport=a.h.dport, table=False))
    return v.fixes(a.node, firewall.undo(c))


def iface_gone(a: Arrival) -> Verdict | None:
    """The interface is gone, down, or has no address."""
    names = [a.listening.name] if a.listening else a.ctx.model_wg(a.node) or ([a.wg] if a.wg else [])
    for name in names:
        gone = link_restore(a.ctx, a.node, name, a.phase)
        if gone:
            return gone.lead(a.node, *a.arrived_on()[:2], **a.arrived_on()[2])
    return None


def port_moved(a: Arrival) -> Verdict | None:
    """Sent to a port where WireGuard does not listen, which is the port the lab file gives it:
    it was changed here, and its peers still send there."""
    ctx, port = a.ctx, a.h.dport
    n = ctx.lab.nodes.get(a.node)
    declared = next((w for w in (n.wireguard.values() if n else ()) if w.listen_port == port
                     and ctx.declared(w.stage)), None)
    moved = next((w for w in a.f.wg if declared and w.name == declared.name), None)
    if a.listening is not None or moved is None:
        return None
    v = Verdict("wg-no-handshake", Stop(a.node, moved.name, a.phase), params={**a.params, "wg": moved.name,
                                                                            "peer": a.sender})
    v.add(a.node, "capture", "wrong-port", summary=a.h.summary, port=port, node=a.node, listen=moved.listen_port)
    v.add(a.node, "wireguard", "listen-port-moved", iface=moved.name, listen=moved.listen_port, port=port)
    return v.fixes(a.node, ("wg", "set", moved.name, "listen-port", str(port)))


def wrong_port(a: Arrival) -> Verdict | None:
    """Sent to a port where WireGuard does not listen, and not one it was moved from: the
    sender's endpoint is wrong."""
    ctx, sender, port = a.ctx, a.sender, a.h.dport
    if a.listening is not None or not a.f.wg:
        return None
    listen = a.f.wg[0].listen_port
    sender_peer = next((p for p in ctx.peers(sender) if ctx.key_owner(p.public_key) == a.node), None)
    sender_wg = next((w.name for w in ctx.f(sender).wg if sender_peer in w.peers), None) or ctx.wg_iface(sender)
    v = Verdict("wg-no-handshake", Stop(sender, sender_wg, a.phase),
                params={**a.params, "node": sender, "iface": sender_wg, "peer": a.node})
    v.add(a.node, "capture", "wrong-port", summary=a.h.summary, port=port, node=a.node, listen=listen)
    if sender_peer:
        v.add(sender, "wireguard", "peer-endpoint", peer=a.node, endpoint=sender_peer.endpoint or "(none)")
        ep = ctx.model_endpoint(sender, a.node)
        if not ep and sender_peer.endpoint:
            ep = addr.endpoint(addr.host_of(sender_peer.endpoint), listen)
        v.fixes(sender, *fixes.peer_fix(ctx, sender, sender_wg, sender_peer, a.node, endpoint=ep))
    return v


def unknown_sender(a: Arrival) -> Verdict | None:
    """The receiving side does not know the sender's key."""
    ctx, node, sender, wg = a.ctx, a.node, a.sender, a.wg
    known = {p.public_key for p in peer_list(ctx, node, wg)}
    sender_key = ctx.key_of(sender)
    if not sender_key or sender_key in known:
        return None
    mine = [x for l in ctx.f(sender).links.values() if l.name in ctx.f(sender).wg_names for x in l.addresses]
    stand_in = next((p for p in peer_list(ctx, node, wg) if ctx.key_owner(p.public_key) is None and
                     any(in_nets(addr.bare(x), p.allowed_ips) for x in mine)), None)
    v = Verdict("wg-no-handshake", Stop(node, wg, a.phase), params={**a.params, "peer": sender})
    v.add(node, "capture", "no-peer-key", summary=a.h.summary, node=node, sender=sender)
    v.add(node, "wireguard", "peers", peers=", ".join(who(ctx, p.public_key) for p in peer_list(ctx, node, wg))
          or "(none)")
    # endpoint: where the sender's datagrams came from (through its NAT), unless the lab file says
    ep = ctx.model_endpoint(node, sender) or (addr.endpoint(a.h.src, a.h.sport) if a.h.sport else None)
    need = [addr.host_net(addr.bare(x)) for x in mine]
    cmds = fixes.peer_fix(ctx, node, wg, stand_in, sender, need=need, endpoint=ep)
    v.fixes(node, *cmds)
    if cmds and not ("endpoint" in cmds[-1] and "persistent-keepalive" in cmds[-1]):
        restart_from(ctx, v, sender, node)     # nothing makes this side start the new session
    return v


def source_not_allowed(a: Arrival) -> Verdict | None:
    """Cryptokey routing on the receiving side: the inner source is not in the sender's allowed-ips."""
    ctx, node, sender, wg = a.ctx, a.node, a.sender, a.wg
    p = next((p for p in peer_list(ctx, node, wg) if p.public_key == ctx.key_of(sender)), None)
    if not p or a.inner is a.h or in_nets(a.inner.src, p.allowed_ips):
        return None
    v = Verdict("wg-allowed-ips", Stop(node, wg, a.phase), params={**a.params, "peer": sender})
    v.add(node, "capture", "nothing-out-of-wg", summary=a.h.summary, wg=wg)
    v.add(node, "wireguard", "allowed-not-source", peer=sender, ips=",".join(p.allowed_ips) or "(none)",
          src=a.inner.src)
    return v.fixes(node, *fixes.peer_fix(ctx, node, wg, p, sender, need=[ctx.covering_net(a.inner.src)]))


def lost_session(a: Arrival) -> Verdict | None:
    """A session the sender still uses and this side has lost."""
    s = stale(a.ctx, a.node, a.sender, a.phase, a.wg)
    return s.lead(a.node, *a.arrived_on()[:2], **a.arrived_on()[2]) if s else None


RECEIVE = (rp_filtered, endpoint_firewall, iface_gone, roaming.nat_forgot, port_moved, wrong_port, unknown_sender,
           source_not_allowed, lost_session)


def receive(ctx: Context, h, phase: str, sender: str | None = None) -> Verdict:
    """A WireGuard datagram reached the node at the other end; nothing came out of its tunnel."""
    a = Arrival(ctx, h, phase, sender)
    for check in RECEIVE:
        v = check(a)
        if v:
            return v
    return inconsistent(ctx, "datagram-passes", node=a.node)


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
          **ctx.handshake(theirs))
    v.add(node, "wireguard", "peer-handshake", peer=other, endpoint=mine.endpoint or "(none)",
          **ctx.handshake(mine))
    # the side that knows where the other is starts the new handshake
    starter, target, entry = (other, node, theirs) if theirs.endpoint or not mine.endpoint else (node, other, mine)
    wg = next((w.name for w in ctx.f(starter).wg if entry in w.peers), None)
    if wg:
        v.fixes(starter, ("wg", "set", wg, "peer", entry.public_key, "remove"))
        v.fixes(starter, *fixes.peer_fix(ctx, starter, wg, None, target, need=entry.allowed_ips))
    return v


def restart_from(ctx: Context, v: Verdict, starter: str, node: str) -> None:
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
    port = addr.port_of(peer.endpoint) if peer.endpoint else w.listen_port
    fam = addr.family(addr.host_of(peer.endpoint)) if peer.endpoint else None
    for c in f.fw.rules:
        if c.hook != "input" or not c.drops or c.is_policy or (fam and not c.for_family(fam)):
            continue        # a DROP policy usually has ACCEPT rules before it; counters would tell
        if c.match("proto") in (None, "udp") and c.match("dport") in (None, str(port)):
            v = Verdict("input-filtered", Stop(remote, None, phase), params={"node": remote, "iface": "-",
                                                                           "rule": c.text})
            v.add(remote, fw_kind(c), "input-drops-port", rule=c.text, port=port)
            return v.fixes(remote, firewall.undo(c))
    sender_key = ctx.key_of(sender)
    if sender_key and sender_key not in {p.public_key for p in ctx.peers(remote)}:
        stand_in = next((p for p in ctx.peers(remote) if ctx.key_owner(p.public_key) is None), None)
        v = Verdict("wg-no-handshake", Stop(remote, w.name, phase), params={"node": remote, "iface": w.name,
                                                                          "peer": sender})
        v.add(remote, "wireguard", "no-peer-for", sender=sender, node=remote)
        v.fixes(remote, *fixes.peer_fix(ctx, remote, w.name, stand_in, sender))
        return v
    return stale(ctx, sender, remote, phase, ctx.wg_iface(sender)) or stale(ctx, remote, sender, phase, w.name)
