"""Assemble captures into the probe's path: ordered hops, request and reply, where it stopped.

Pure logic over ``observe.Capture`` records and the lab model: no sockets, no kernel,
so every rule here is unit-tested with hand-made captures.

A WireGuard datagram is tied to the inner packet it carries by its cleartext header:
(receiver index, counter) is the same on every hop of the underlay, NAT or not, and
the first such datagram leaving a node right after an inner packet left that node's
wg interface, with the matching padded size, is the one that carries it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .model import Lab
from .observe import Capture, Observation
from .packets import summary, wg_carries


@dataclass
class Hop:
    node: str
    iface: str
    dir: str                     # "in" | "out"
    src: str
    dst: str
    summary: str
    t_ms: float
    role: str                    # request | reply | error | redirect | underlay
    carries: int | None = None   # underlay: index of the inner hop it carries
    layer: str = "inner"         # inner | underlay
    length: int = 0              # IP total length (ties an inner packet to its datagram)
    sport: int = 0
    dport: int = 0

    def to_json(self) -> dict:
        d = {"node": self.node, "iface": self.iface, "dir": self.dir, "src": self.src,
             "dst": self.dst, "summary": self.summary, "t_ms": round(self.t_ms, 3),
             "role": self.role, "layer": self.layer}
        if self.carries is not None:
            d["carries"] = self.carries
        return d


@dataclass
class Place:
    node: str
    iface: str
    direction: str               # in | out
    phase: str = "request"       # request | reply

    def to_json(self) -> dict:
        return {"node": self.node, "iface": self.iface, "direction": self.direction,
                "phase": self.phase}

    def words(self) -> str:
        verb = "entering" if self.direction == "in" else "leaving"
        return f"{verb} {self.node} on {self.iface}"


@dataclass
class TraceResult:
    src: str
    dst: str
    probe: dict
    reachable: bool
    hops: list[Hop]
    last_seen: Place | None
    expected_next: str = ""          # where it should have appeared next, in words
    reached_dst: bool = False        # the request arrived at the destination
    stop_phase: str = ""             # request | reply | "" when reachable
    send_error: str = ""
    errors: list[Hop] = field(default_factory=list)      # ICMP errors about the probe
    redirects: list[Hop] = field(default_factory=list)
    handshakes: list[Hop] = field(default_factory=list)  # WireGuard handshake messages seen
    route: dict = field(default_factory=dict)
    ended: str = ""
    story: str = ""

    def inner_path(self, role: str = "request") -> str:
        """The document's last figure: home.wg0 -> bcc.wg0 -> … for one direction."""
        return " -> ".join(f"{h.node}.{h.iface}" for h in self.hops
                           if h.layer == "inner" and h.role == role)

    def to_json(self) -> dict:
        return {
            "src": self.src, "dst": self.dst, "probe": self.probe, "reachable": self.reachable,
            "last_seen": self.last_seen.to_json() if self.last_seen else None,
            "expected_next": self.expected_next or None,
            "reached_dst": self.reached_dst,
            "stop_phase": self.stop_phase or None,
            "send_error": self.send_error or None,
            "story": self.story,
            "hops": [h.to_json() for h in self.hops],
            "errors": [h.to_json() for h in self.errors],
            "redirects": [h.to_json() for h in self.redirects],
            "handshakes": [h.to_json() for h in self.handshakes],
        }


def assemble(lab: Lab, obs: Observation, src: str, dst_name: str) -> TraceResult:
    probe = obs.probe
    caps = sorted(obs.captures, key=lambda c: c.ts)
    t0 = obs.sent_ts or (caps[0].ts if caps else 0.0)
    hops: list[Hop] = []
    errors, redirects, handshakes = [], [], []
    underlay_by_key: dict[tuple[int, int], int] = {}     # (receiver, counter) -> carried hop index
    pending_tx: dict[str, list[int]] = {}                # node -> inner hops that left by wg, untied

    def hop_of(c: Capture, role: str, layer: str = "inner") -> Hop:
        return Hop(c.node, c.iface, c.dir, c.pkt.src, c.pkt.dst, summary(c.pkt),
                   (c.ts - t0) * 1000, role, None, layer, c.pkt.length, c.pkt.sport, c.pkt.dport)

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
    dst_owner = lab.address_owner(probe.dst)
    dst_node = dst_owner[0] if dst_owner else None
    res.reached_dst = any(h.role == "request" and h.dir == "in" and h.node == dst_node and h.layer == "inner"
                          for h in hops)
    if probe.kind == "udp":
        # A closed UDP port answers with "port unreachable" from the destination itself.
        res.reachable = any(h.node == src and h.dir == "in" and h.role == "error"
                            and h.src == probe.dst and "port unreachable" in h.summary for h in errors)
    else:
        # a TCP reset is an answer, but not a connection: only a SYN-ACK makes TCP reachable
        res.reachable = any(h.node == src and h.dir == "in" and h.role == "reply" and h.layer == "inner"
                            and (probe.kind != "tcp" or "Flags [S." in h.summary) for h in hops)
    if not res.reachable:
        _where_stopped(lab, res, src)
    res.story = story(res)
    return res


def _where_stopped(lab: Lab, res: TraceResult, src: str) -> None:
    moving = [h for h in res.hops if h.role in ("request", "reply")]
    if not moving:
        res.stop_phase = "request"
        if res.send_error:
            res.expected_next = f"{src} refused to send it: {res.send_error}"
        else:
            res.expected_next = f"it never left {src}"
        return
    last = moving[-1]
    res.stop_phase = last.role
    res.last_seen = Place(last.node, last.iface, last.dir, last.role)
    res.expected_next = expected_after(lab, last)


def expected_after(lab: Lab, h: Hop) -> str:
    """Where the packet should have shown up after ``h``, in words."""
    node = lab.nodes.get(h.node)
    if h.layer == "underlay" and h.dir == "in" and node and node.wireguard and \
            any(node.address_of(i) == h.dst for i in node.addresses):
        wg = next(iter(node.wireguard))
        return (f"its WireGuard datagram reached {h.node} on {h.iface}, but WireGuard on {h.node} "
                f"never delivered the packet inside to {wg}")
    if h.dir == "in":
        return f"seen entering {h.node} on {h.iface}, never left {h.node}"
    if node and h.iface in node.wireguard:
        if h.layer == "inner":
            return (f"seen leaving {h.node} on {h.iface}; no WireGuard datagram carried it "
                    f"out of {h.node}")
    for link in lab.links:
        for a, b in ((link.a, link.b), (link.b, link.a)):
            if a.node == h.node and a.iface == h.iface:
                return f"seen leaving {h.node} on {h.iface}, never arrived at {b.node} on {b.iface}"
            if a.node == h.node and link.bridge == h.iface:
                return f"seen leaving {h.node} on {h.iface}, never arrived at the next host on that LAN"
    # A LAN host's interface on the company bridge: the next node is whoever owns the destination MAC.
    return f"seen leaving {h.node} on {h.iface}, never arrived at the next hop ({h.dst})"


def story(res: TraceResult) -> str:
    refused = any(h.node == res.src and h.dir == "in" and h.role == "reply" and "Flags [R" in h.summary
                  for h in res.hops)
    if refused and not res.reachable:
        return f"{res.dst} answered with a TCP reset: nothing accepts connections on port {res.probe.get('port')}."
    if res.reachable and res.probe.get("kind") == "udp":
        return (f"{res.dst} answered with ICMP port unreachable (nothing listens on UDP port "
                f"{res.probe.get('port')}): the path works both ways.")
    if res.reachable:
        return f"{res.dst} answered: the reply came back to {res.src}."
    if res.last_seen is None:
        return res.expected_next
    phase = "the reply" if res.stop_phase == "reply" else "the request"
    if res.expected_next.startswith("its "):
        return f"{phase}'s {res.expected_next[4:]}."
    return f"{phase} was {res.expected_next}."
