"""The lab as plain data: what the lab file says, checked, never touching the kernel.

A lab is nodes joined by links. Each node item (address, route, sysctl, firewall
rule, WireGuard interface or peer) either exists from stage 0 (``stage`` is
``None``) or is added when the walkthrough reaches the named stage.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stage:
    name: str
    title: str


@dataclass(frozen=True)
class Route:
    dst: str                 # "default" or a CIDR
    via: str | None = None
    dev: str | None = None
    stage: str | None = None
    table: int | None = None  # None: the main table
    family: int = 4          # 4 or 6 ("default" is either)
    made_by: str | None = None   # the wg-quick interface that makes it (not typed by the lab)


@dataclass(frozen=True)
class IpRule:
    """A policy routing rule (``ip rule``), as wg-quick makes them for a full tunnel."""
    table: str                       # a number, or "main"
    fwmark: int | None = None
    invert: bool = False             # "not fwmark …"
    suppress_prefixlength: int | None = None
    priority: int | None = None
    stage: str | None = None
    family: int = 4
    made_by: str | None = None


@dataclass(frozen=True)
class Sysctl:
    key: str
    value: str
    stage: str | None = None
    made_by: str | None = None


@dataclass(frozen=True)
class Rule:
    """A firewall rule in iptables' own syntax, e.g. ``-t nat -A POSTROUTING -o wan -j MASQUERADE``;
    family 6 is an ip6tables rule."""
    rule: str
    stage: str | None = None
    family: int = 4

    @property
    def program(self) -> str:
        return "ip6tables" if self.family == 6 else "iptables"

    @property
    def args(self) -> tuple[str, ...]:
        return tuple(shlex.split(self.rule))

    @property
    def table(self) -> str:
        words = self.args
        return words[words.index("-t") + 1] if "-t" in words[:-1] else "filter"


@dataclass(frozen=True)
class NftCommand:
    """One nft command of a node's native nftables ruleset, in nft's own words, e.g. ``add rule
    inet filter forward iifname "eth1" drop`` (checked as data: model/fields.nft_command)."""
    text: str
    stage: str | None = None

    @property
    def argv(self) -> tuple[str, ...]:
        # nft reads its arguments as one line: the whole command as one argument, as people type it
        return ("nft", self.text)


@dataclass(frozen=True)
class Peer:
    peer: str                        # node name
    allowed_ips: tuple[str, ...]
    endpoint: str | None = None      # "node:iface" or "ip:port"
    keepalive: int | None = None
    stage: str | None = None


@dataclass(frozen=True)
class WgQuick:
    """An interface wg-quick brings up (``wg_quick = true``) from a file the lab writes: what that
    file says beyond WireGuard's own keys. wg-quick makes the routes, rules and sysctl of its
    AllowedIPs itself; the model lists them as items ``made_by`` the interface."""
    table: str = "auto"              # Table: auto, off, main or a number
    fwmark: int | None = None        # FwMark as written (None: wg-quick picks one for a full tunnel)
    dns: tuple[str, ...] = ()        # DNS: shown, never applied (a lab has no resolver)


@dataclass(frozen=True)
class WgInterface:
    name: str
    addresses: tuple[str, ...]       # "10.66.66.1/24", "fd42:42:42::1/64": one or more, any family
    listen_port: int | None
    stage: str | None
    peers: tuple[Peer, ...] = ()
    fwmark: int | None = None        # marks its own datagrams (a full tunnel's policy routing)
    mtu: int | None = None           # None: the default (wireguard's 1420, or wg-quick's own choice)
    quick: WgQuick | None = None     # brought up by wg-quick (None: by ip and wg, command by command)


@dataclass(frozen=True)
class Service:
    kind: str        # "ssh" (a real sshd where installed, else a TCP listener) or "tcp"
    port: int


@dataclass(frozen=True)
class Node:
    name: str
    description: str = ""
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)   # iface -> CIDRs
    bridges: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    sysctl: tuple[Sysctl, ...] = ()
    policies: dict[str, str] = field(default_factory=dict)    # filter chain -> ACCEPT/DROP (IPv4)
    iptables: tuple[Rule, ...] = ()                            # both families (Rule.family)
    wireguard: dict[str, WgInterface] = field(default_factory=dict)
    services: tuple[Service, ...] = ()
    rules: tuple[IpRule, ...] = ()
    policies6: dict[str, str] = field(default_factory=dict)   # the same for ip6tables
    nft: tuple[NftCommand, ...] = ()                          # native nftables, in order

    def cidrs(self, iface: str) -> tuple[str, ...]:
        """The addresses (with prefix) the lab file gives ``iface``, a link end or WireGuard."""
        if iface in self.addresses:
            return self.addresses[iface]
        wg = self.wireguard.get(iface)
        return wg.addresses if wg else ()

    def all_cidrs(self) -> list[tuple[str, str]]:
        """(iface, CIDR) of every address of the node, link ends first, then WireGuard."""
        return [(i, c) for i in list(self.addresses) + list(self.wireguard) for c in self.cidrs(i)]

    def address_of(self, iface: str, family: int | None = None) -> str | None:
        """The first address on ``iface`` of ``family``; without one, IPv4 before IPv6."""
        from ..addr import family as fam_of
        cs = self.cidrs(iface)
        for want in ([family] if family else [4, 6]):
            for c in cs:
                if fam_of(c) == want:
                    return c.split("/")[0]
        return None


@dataclass(frozen=True)
class Endpoint:
    node: str
    iface: str


@dataclass(frozen=True)
class Link:
    a: Endpoint
    b: Endpoint
    bridge: str | None = None     # a's end is a port of this bridge on a's node


@dataclass(frozen=True)
class Check:
    """A pair that must work when the lab is complete (``wgtrace check --all``)."""
    src: str
    dst: str
    kind: str = "icmp"               # icmp | tcp | udp
    port: int = 0
    family: int | None = None        # 4 or 6; None: every family both ends have

    @property
    def label(self) -> str:
        return self.kind if self.kind == "icmp" else f"{self.kind}/{self.port}"


@dataclass(frozen=True)
class Lab:
    name: str
    description: str
    path: str
    nodes: dict[str, Node]
    links: tuple[Link, ...]
    stages: tuple[Stage, ...]           # stages[0] is "base"
    probe_src: str | None = None
    probe_dst: str | None = None
    checks: tuple[Check, ...] = ()
    params: dict = field(default_factory=dict)     # parameter -> the value it was built with
    # the lab-file data it was parsed from when that is not its file: a model discovered from
    # hosts, or a lab seen with only some nodes in view (a replay needs it, not the file)
    source: dict | None = field(default=None, compare=False, repr=False)

    def stage_index(self, name_or_number: str | int) -> int | None:
        """Index of a stage given by number ("3") or name ("home-route"); None if unknown."""
        text = str(name_or_number).strip()
        if text.isdigit():
            n = int(text)
            return n if n < len(self.stages) else None
        for i, st in enumerate(self.stages):
            if st.name == text:
                return i
        return None

    def bridge_ports(self) -> dict[str, set[str]]:
        """node -> its interfaces that are ports of a bridge (the bridge shows their traffic)."""
        ports: dict[str, set[str]] = {}
        for link in self.links:
            if link.bridge:
                ports.setdefault(link.a.node, set()).add(link.a.iface)
        return ports

    def address_owner(self, ip: str) -> tuple[str, str] | None:
        """(node, iface) that holds this address in the final stage."""
        from ..addr import same_address
        for n in self.nodes.values():
            for iface, c in n.all_cidrs():
                if same_address(c, ip):
                    return n.name, iface
        return None
