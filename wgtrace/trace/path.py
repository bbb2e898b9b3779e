"""Assemble captures into the probe's path: ordered hops, request and reply, where it stopped.

Pure logic over ``capture.Capture`` records and the lab model: no sockets, no kernel, so
every rule here is unit-tested with hand-made captures.

Words used throughout: a hop's ``dir`` is ``in`` or ``out`` (of the node, on that
interface); its ``phase`` (``role`` for the probe's own packets) is ``request`` or ``reply``.

A WireGuard datagram is tied to the inner packet it carries by its cleartext header:
(receiver index, counter) is the same on every hop of the underlay, NAT or not, and
the first such datagram leaving a node right after an inner packet left that node's
WireGuard interface, with the matching padded size, is the one that carries it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model.lab import Lab
from .capture import Capture, Observation
from .packets import TCP_RST, TCP_SYN, summary, wg_carries


@dataclass
class Hop:
    node: str
    iface: str
    dir: str                     # "in" | "out"
    src: str
    dst: str
    summary: str
    t_ms: float
    role: str                    # request | reply | error | redirect | handshake
    carries: int | None = None   # underlay: index of the inner hop it carries
    layer: str = "inner"         # inner | underlay
    length: int = 0              # IP total length (ties an inner packet to its datagram)
    sport: int = 0
    dport: int = 0
    proto: int = 0
    tcp_flags: int = 0
    icmp_type: int = -1
    icmp_code: int = -1
    mtu: int = 0                 # ICMP "fragmentation needed": the next hop's MTU
    wg_type: int = 0

    @property
    def is_reset(self) -> bool:
        return self.proto == 6 and bool(self.tcp_flags & TCP_RST)

    @property
    def needs_frag(self) -> bool:
        """ICMP "fragmentation needed", or ICMPv6 "packet too big"."""
        return (self.proto, self.icmp_type, self.icmp_code) == (1, 3, 4) or (self.proto, self.icmp_type) == (58, 2)

    @property
    def port_unreachable(self) -> bool:
        return (self.proto, self.icmp_type, self.icmp_code) in ((1, 3, 3), (58, 1, 4))

    def to_json(self) -> dict:
        d = {"node": self.node, "iface": self.iface, "dir": self.dir, "src": self.src,
             "dst": self.dst, "summary": self.summary, "t_ms": round(self.t_ms, 3),
             "role": self.role, "layer": self.layer}
        if self.carries is not None:
            d["carries"] = self.carries
        return d


@dataclass(frozen=True)
class Place:
    """Where on the path: a node, an interface on it, the phase (request or reply), and for a place
    seen in a capture the direction there (in or out). A trace's last sighting and a verdict's
    stop are both one (``diagnose.verdict.Stop`` is this class)."""
    node: str
    iface: str | None
    phase: str = "request"       # request | reply
    dir: str = ""                # in | out; "" for a stop, which is a place of a node, not of a frame

    def to_json(self) -> dict:
        # "direction" is an older name: of "dir" where a capture saw it, else of "phase"
        if not self.dir:
            return {"node": self.node, "iface": self.iface, "direction": self.phase, "phase": self.phase}
        return {"node": self.node, "iface": self.iface, "dir": self.dir, "direction": self.dir,
                "phase": self.phase}


@dataclass
class Story:
    """What happened to the probe, as a text key and its parameters (texts/<lang>.toml, story.*)."""
    kind: str
    params: dict = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        from ..texts import say
        return say(f"story.{self.kind}", lang, **self.params)

    def next_text(self, lang: str = "en") -> str:
        """Where the probe should have shown up next (the stop part of the story)."""
        from ..texts import say, template
        if template(f"next.{self.kind}", lang) is None:
            return ""
        return say(f"next.{self.kind}", lang, **self.params)


@dataclass
class TraceResult:
    src: str
    dst: str
    probe: dict
    reachable: bool
    hops: list[Hop]
    last_seen: Place | None
    reached_dst: bool = False        # the request arrived at the destination
    stop_phase: str = ""             # request | reply | "" when reachable
    send_error: str = ""
    errors: list[Hop] = field(default_factory=list)      # ICMP errors about the probe
    redirects: list[Hop] = field(default_factory=list)
    handshakes: list[Hop] = field(default_factory=list)  # WireGuard handshake messages seen
    route: dict = field(default_factory=dict)
    ended: str = ""
    story: Story = field(default_factory=lambda: Story("never-left"))
    dst_node: str | None = None      # the node that owns the destination address
    refused: bool = False            # the destination answered with a TCP reset / port unreachable
    arp: list[tuple] = field(default_factory=list)       # (node, iface, dir, op, sender, target)
    observation: object = field(default=None, repr=False)  # the raw capture (for pcapng), when kept
    other: dict = field(default_factory=dict)            # node -> packets not the probe's seen meanwhile

    def story_text(self, lang: str = "en") -> str:
        return self.story.text(lang)

    @property
    def family(self) -> int:
        return 6 if ":" in (self.probe.get("dst_ip") or "") else 4

    @property
    def expected_next(self) -> str:
        return self.story.next_text()

    def inner_path(self, role: str = "request") -> str:
        """The document's last figure: home.wg0 -> bcc.wg0 -> … for one direction."""
        return " -> ".join(f"{h.node}.{h.iface}" for h in self.hops
                           if h.layer == "inner" and h.role == role)

    def to_json(self, lang: str = "en") -> dict:
        return {
            "src": self.src, "dst": self.dst, "probe": self.probe, "family": self.family,
            "reachable": self.reachable, "last_seen": self.last_seen.to_json() if self.last_seen else None,
            "expected_next": self.story.next_text(lang) or None,
            "reached_dst": self.reached_dst,
            "stop_phase": self.stop_phase or None,
            "send_error": self.send_error or None,
            "story": self.story.text(lang),
            "hops": [h.to_json() for h in self.hops],
            "errors": [h.to_json() for h in self.errors],
            "redirects": [h.to_json() for h in self.redirects],
            "handshakes": [h.to_json() for h in self.handshakes],
        }


def assemble(lab: Lab, obs: Observation, src: str, dst_name: str,
             wg_ifaces: set[tuple[str, str]] | None = None) -> TraceResult:
    """``wg_ifaces``: (node, iface) pairs that are WireGuard interfaces, as the nodes report them
    (the lab file's declarations when not given)."""
    probe = obs.probe
    caps = causal_order(obs.captures)
    t0 = obs.sent_ts or (caps[0].ts if caps else 0.0)
    hops: list[Hop] = []
    errors, redirects, handshakes = [], [], []
    underlay_by_key: dict[tuple[int, int], int] = {}     # (receiver, counter) -> carried hop index
    pending_tx: dict[str, list[int]] = {}                # node -> inner hops that left by wg, untied

    def hop_of(c: Capture, role: str, layer: str = "inner") -> Hop:
        p = c.pkt
        return Hop(c.node, c.iface, c.dir, p.src, p.dst, summary(p), (c.ts - t0) * 1000, role, None, layer,
                   p.length, p.sport, p.dport, p.proto, p.tcp_flags, p.icmp_type, p.icmp_code, p.mtu, p.wg_type)

    if wg_ifaces is None:
        wg_ifaces = {(n.name, w) for n in lab.nodes.values() for w in n.wireguard}
    for c in caps:
        role = probe.role(c.pkt)
        if role in ("request", "reply"):
            hops.append(hop_of(c, role))
            if c.dir == "out" and (c.node, c.iface) in wg_ifaces:
                pending_tx.setdefault(c.node, []).append(len(hops) - 1)
        elif role == "error":
            h = hop_of(c, "error")
            errors.append(h)
            hops.append(h)
        elif role == "redirect":
            redirects.append(hop_of(c, "redirect"))
        elif c.pkt.wg_type in (1, 2, 3):
            handshakes.append(hop_of(c, "handshake", "underlay"))
        elif c.pkt.wg_type == 4 and c.pkt.wg_len > 32:
            key = (c.pkt.wg_receiver, c.pkt.wg_counter)
            if key not in underlay_by_key and c.dir == "out":
                for idx in pending_tx.get(c.node, []):
                    if wg_carries(c.pkt.wg_len, hops[idx].length):
                        underlay_by_key[key] = idx
                        pending_tx[c.node].remove(idx)
                        break
            if key in underlay_by_key:
                carried = underlay_by_key[key]
                h = hop_of(c, hops[carried].role, "underlay")
                h.carries = carried
                h.summary += f" carrying {hops[carried].src} > {hops[carried].dst}"
                hops.append(h)

    res = TraceResult(src, dst_name, probe.to_json(), False, hops, None, route=obs.route,
                      ended=obs.ended, send_error=obs.send_error, errors=errors,
                      redirects=redirects, handshakes=handshakes)
    res.arp = [tuple(a[1:]) for a in obs.arp]
    res.other = dict(obs.other)
    owner = lab.address_owner(probe.dst)
    res.dst_node = owner[0] if owner else None
    res.reached_dst = any(h.role == "request" and h.dir == "in" and h.node == res.dst_node and h.layer == "inner"
                          for h in hops)
    back = [h for h in hops if h.node == src and h.dir == "in" and h.layer == "inner"]
    if probe.kind == "udp":
        # A closed UDP port answers with "port unreachable" from the destination itself.
        res.refused = any(h.role == "error" and h.src == probe.dst and h.port_unreachable for h in back)
        res.reachable = any(h.role == "reply" for h in back)
    else:
        # a TCP reset is an answer, but not a connection: only a SYN-ACK makes TCP reachable
        res.refused = any(h.role == "reply" and h.is_reset for h in back)
        res.reachable = any(h.role == "reply" and (probe.kind != "tcp" or h.tcp_flags & TCP_SYN) for h in back)
    if not res.reachable:
        _where_stopped(res)
    res.story = story(res, lab)
    return res


def causal_order(captures: list[Capture]) -> list[Capture]:
    """By the kernel's timestamps; frames stamped alike are one packet on its way (a veth carries
    the sender's stamp to the receiver, a router keeps the stamp it received with), so among them:
    a node's "in" before its "out", and an "out" before the "in" it causes on another node."""
    caps = sorted(captures, key=lambda c: c.ts)
    out: list[Capture] = []
    i = 0
    while i < len(caps):
        j = i
        while j + 1 < len(caps) and caps[j + 1].ts == caps[i].ts:
            j += 1
        group = caps[i:j + 1]
        while group:
            def caused(c: Capture) -> bool:
                if c.dir == "out":
                    return any(o is not c and o.node == c.node and o.dir == "in" for o in group)
                return any(o is not c and o.node != c.node and o.dir == "out" for o in group)
            nxt = next((c for c in group if not caused(c)), group[0])
            out.append(nxt)
            group.remove(nxt)
        i = j + 1
    return out


def _where_stopped(res: TraceResult) -> None:
    moving = [h for h in res.hops if h.role in ("request", "reply")]
    if not moving:
        res.stop_phase = "request"
        return
    last = moving[-1]
    res.stop_phase = last.role
    res.last_seen = Place(last.node, last.iface, last.role, last.dir)


def _stop_story(lab: Lab, res: TraceResult, h: Hop) -> Story:
    """Where the packet should have shown up after ``h``, as a story."""
    node = lab.nodes.get(h.node)
    p = {"phase": ("@", f"phase.{h.role}"), "node": h.node, "iface": h.iface}
    if h.layer == "underlay" and h.dir == "in" and node and node.wireguard and \
            any(node.address_of(i) == h.dst for i in node.addresses):
        return Story("datagram-not-delivered", {**p, "wg": next(iter(node.wireguard))})
    if h.dir == "in":
        return Story("entered-never-left", p)
    if h.layer == "inner" and node and h.iface in node.wireguard:
        return Story("not-carried", p)
    for link in lab.links:
        for a, b in ((link.a, link.b), (link.b, link.a)):
            if a.node == h.node and a.iface == h.iface:
                return Story("left-never-arrived", {**p, "next": b.node, "next_iface": b.iface})
            if a.node == h.node and link.bridge == h.iface:
                return Story("left-lan", p)
    return Story("left-next-hop", {**p, "dst": h.dst})


def story(res: TraceResult, lab: Lab) -> Story:
    base = {"src": res.src, "dst": res.dst, "port": res.probe.get("port")}
    if res.refused and not res.reachable:
        return Story("udp-port-closed" if res.probe.get("kind") == "udp" else "tcp-reset", base)
    if res.reachable:
        return Story("answered", base)
    if res.last_seen is None:
        if res.send_error:
            return Story("refused-to-send", {**base, "error": res.send_error})
        return Story("never-left", base)
    last = [h for h in res.hops if h.role in ("request", "reply")][-1]
    return _stop_story(lab, res, last)
