"""Turn the model into the commands a person would type on each node, stage by stage.

The commands are in the document's own style (``ip``, ``wg``, ``iptables``, ``sysctl``; ``wg-quick
up`` for an interface wg-quick brings up), so lessons show them and the lab builds itself by
running them. Each command is an argument
list: text from a lab file is only ever one argument, never shell. Public keys and endpoints
are filled in from the built lab when known.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from .lab import Lab, Node, Peer


PLACEHOLDER = re.compile(r"^<[a-z0-9-]+-public-key>$")


@dataclass(frozen=True)
class Command:
    node: str
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        """As a person types it (and as a shell reads it back: every word quoted as needed; a
        key placeholder stays as it is, for a person to replace)."""
        return " ".join(a if PLACEHOLDER.match(a) else shlex.quote(a) for a in self.argv)


def endpoint_of(lab: Lab, endpoint: str) -> str:
    """Resolve "node:iface" to "ip:port" (the node's address there, IPv4 before IPv6, and its
    WireGuard port; an IPv6 address in brackets)."""
    from ..addr import endpoint as join
    node, _, rest = endpoint.partition(":")
    if node not in lab.nodes:
        return endpoint
    n = lab.nodes[node]
    ports = [w.listen_port for w in n.wireguard.values() if w.listen_port]
    return join(n.address_of(rest) or "", ports[0] if ports else 51820)


def pubkey(keys: dict[str, str] | None, node: str) -> str:
    if keys and node in keys:
        return keys[node]
    return f"<{node}-public-key>"


def peer_argv(wg: str, key: str, allowed, endpoint: str | None = None, keepalive: int | None = None,
              remove: str | None = None) -> tuple[str, ...]:
    """One ``wg set`` that (re)declares a peer, dropping another one first when asked."""
    argv = ["wg", "set", wg]
    if remove:
        argv += ["peer", remove, "remove"]
    argv += ["peer", key, "allowed-ips", ",".join(allowed)]
    if endpoint:
        argv += ["endpoint", endpoint]
    if keepalive is not None:
        argv += ["persistent-keepalive", str(keepalive)]
    return tuple(argv)


def node_commands(lab: Lab, node: Node, stage: str | None,
                  keys: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    """Commands for one node at one stage (``None`` is stage 0, the base). Interfaces first, then
    routes, then the firewall, then peers: a peer with an endpoint sends its first handshake at
    once, and it is lost (and retried only 5 s later) when the route it leaves by is not there
    yet, or when a firewall half set up (policy DROP, its ACCEPT rules still to come) meets it.
    ``wg-quick up`` sets its peers' endpoints itself, so it comes after the routes it does not
    make and the firewall (as on a machine whose network is up before its tunnel), and routes
    into its interface after it."""
    out: list[tuple[str, ...]] = []
    made_now = {w.name for w in node.wireguard.values() if w.stage == stage}
    sysctls = [("sysctl", "-w", f"{s.key}={s.value}") for s in node.sysctl if s.stage == stage and not s.made_by]
    # a sysctl of an interface made at this stage (net.ipv4.conf.wg0.…) waits until it exists
    later = [c for c in sysctls if _sysctl_iface(c[2]) in made_now]
    out += [c for c in sysctls if c not in later]
    quick = [w for w in node.wireguard.values() if w.stage == stage and w.quick]
    for w in node.wireguard.values():
        if w.stage == stage and not w.quick:
            out.append(("ip", "link", "add", "dev", w.name, "type", "wireguard"))
            out += [("ip", "addr", "add", c, "dev", w.name) for c in w.addresses]
            port = ("listen-port", str(w.listen_port)) if w.listen_port else ()
            mark = ("fwmark", str(w.fwmark)) if w.fwmark else ()
            out.append(("wg", "set", w.name, "private-key", "./private", *port, *mark))
            if w.mtu:
                out.append(("ip", "link", "set", "dev", w.name, "mtu", str(w.mtu)))
            out.append(("ip", "link", "set", w.name, "up"))
    routes = [r for r in node.routes if r.stage == stage and not r.made_by]
    into = {w.name for w in quick}
    out += [route_argv(r) for r in routes if r.dev not in into]
    for rule in node.rules:
        if rule.stage == stage and not rule.made_by:
            out.append(rule_argv(rule))
    if stage is None:
        for chain, pol in node.policies.items():
            out.append(("iptables", "-P", chain, pol))
        for chain, pol in node.policies6.items():
            out.append(("ip6tables", "-P", chain, pol))
    for rule in node.iptables:
        if rule.stage == stage:
            out.append((rule.program, *rule.args))
    for c in node.nft:
        if c.stage == stage:
            out.append(c.argv)
    out += [("wg-quick", "up", wg_quick_file(w.name)) for w in quick]
    out += later
    out += [route_argv(r) for r in routes if r.dev in into]
    for w in node.wireguard.values():
        for p in w.peers:
            if p.stage == stage and not (w.quick and p.stage == w.stage):     # those are in its file
                out.append(peer_argv(w.name, pubkey(keys, p.peer), p.allowed_ips,
                                     endpoint_of(lab, p.endpoint) if p.endpoint else None, p.keepalive))
    return out


def _sysctl_iface(assignment: str) -> str | None:
    """The interface a ``net.ipv4.conf.IFACE.key=value`` names (None for all/default or another key)."""
    parts = assignment.split("=", 1)[0].split(".")
    return parts[3] if len(parts) > 4 and parts[:3] in (["net", "ipv4", "conf"], ["net", "ipv6", "conf"]) else None


def route_argv(r) -> tuple[str, ...]:
    argv = ["ip", *(["-6"] if r.family == 6 else []), "route", "add", r.dst]
    if r.via:
        argv += ["via", r.via]
    if r.dev:
        argv += ["dev", r.dev]
    if r.table:
        argv += ["table", str(r.table)]
    return tuple(argv)


def wg_quick_file(iface: str) -> str:
    """Where the lab writes the wg-quick file of a node's interface: the node's own home (wg-quick
    names the interface after the file)."""
    return f"/root/{iface}.conf"


def starts_handshakes(lab: Lab, cmd: "Command") -> bool:
    """Does this command give a peer an endpoint (a handshake starts at once)?"""
    if cmd.argv[:2] == ("wg", "set"):
        return "endpoint" in cmd.argv
    if cmd.argv[:2] == ("wg-quick", "up"):
        node = lab.nodes[cmd.node]
        w = next((w for w in node.wireguard.values() if wg_quick_file(w.name) == cmd.argv[2]), None)
        return w is not None and any(p.endpoint and p.stage == w.stage for p in w.peers)
    return False


def self_starting(lab: Lab, node: str, peer: str, stage: int) -> bool:
    """Do ``node`` and ``peer`` complete a handshake with nobody sending anything? Only when one
    side knows where the other is and sends keepalives (WireGuard starts a session for data or a
    keepalive, never for a configuration), or the tunnel carries the kernel's own IPv6 chatter
    (router and multicast listener messages for ``::/0``, as a full tunnel of both families does)."""
    names = {s.name: i for i, s in enumerate(lab.stages)}

    def entry(a: str, b: str):
        found = None
        for w in lab.nodes[a].wireguard.values():
            for p in w.peers:
                if p.peer == b and names.get(p.stage, 0) <= stage:
                    found = p if found is None else Peer(p.peer, p.allowed_ips, p.endpoint or found.endpoint,
                                                         p.keepalive if p.keepalive is not None else found.keepalive)
        return found
    mine, theirs = entry(node, peer), entry(peer, node) if peer in lab.nodes else None
    for p in (mine, theirs):
        if p is not None and p.endpoint and (p.keepalive or "::/0" in p.allowed_ips):
            return True
    return False


def rule_argv(rule) -> tuple[str, ...]:
    """``ip rule add`` for a policy routing rule, as wg-quick types them."""
    argv = ["ip", *(["-6"] if getattr(rule, "family", 4) == 6 else []), "rule", "add"]
    if rule.fwmark is not None:
        argv += (["not"] if rule.invert else []) + ["fwmark", str(rule.fwmark)]
    argv += ["table", rule.table]
    if rule.suppress_prefixlength is not None:
        argv += ["suppress_prefixlength", str(rule.suppress_prefixlength)]
    if rule.priority is not None:
        argv += ["priority", str(rule.priority)]
    return tuple(argv)


def stage_commands(lab: Lab, index: int, keys: dict[str, str] | None = None) -> list[Command]:
    """All commands of stage ``index``, node by node in the lab file's order."""
    stage = None if index == 0 else lab.stages[index].name
    return [Command(node.name, argv) for node in lab.nodes.values()
            for argv in node_commands(lab, node, stage, keys)]


SSH_HOSTKEY = "/run/sshd/ssh_host_ed25519_key"


def sshd_argv(port: int, sshd: str = "/usr/sbin/sshd") -> tuple[str, ...]:
    """How a node's sshd is started (by the builder, and by the fix when it has stopped)."""
    return (sshd, "-f", "/dev/null", "-h", SSH_HOSTKEY, "-o", "PidFile=/run/sshd.pid",
            "-o", "PermitRootLogin=yes", "-p", str(port))
