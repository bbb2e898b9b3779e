"""A firewall as the verdict rules see it, whoever wrote it: neutral records of rules and policies.

``FwRule`` is one rule or one chain policy of any backend (iptables, ip6tables, native nftables),
with what the rules need to know without reading its text: the hook it runs on (input,
forward, output, prerouting, postrouting), its family (4, 6, or 0 for both, as nft's ``inet``
tables), its verdict, and its matches in neutral words. ``Firewall`` is a node's whole set with
the packet counts read before the probe and the ones that moved during it, and answers the
questions the verdict rules ask: what dropped on this hook, is this chain stateful, would a new
packet from one interface to another get through, which rules translate addresses.

The text of a rule (as its own tool prints it) is kept for evidence only; the commands that
take a rule out or let a packet through are the backend's (firewall/__init__.py dispatches).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ...addr import in_nets, ip, net

HOOKS = ("ingress", "prerouting", "input", "forward", "output", "postrouting", "egress")
DROPS = ("drop", "reject")
# The hooks a packet passes on its way to the one a check asks about, in order: a drop on any of
# them keeps it from leaving (forward), from reaching its program (input), from leaving (output).
WAY = {"forward": ("ingress", "prerouting", "forward", "postrouting", "egress"),
       "input": ("ingress", "prerouting", "input"),
       "output": ("output", "postrouting", "egress")}
# neutral match keys: iif oif proto sport dport src dst (a value, or several: "{a,b}" or "a,b";
# addresses as networks or ranges a-b; ports as numbers or ranges), ctstate (comma-separated
# states), family (4|6: a match on one family's header), rpfilter ("strict" or "loose": what
# passes that reverse-path test; "!strict" what fails it, as ip6tables' rpfilter --invert and
# nft's "fib saddr . iif oif missing" match); a leading "!" negates. "other" marks a match the
# backend's parser did not understand (the rule is then not judged)
JUDGED = {"iif", "oif", "proto", "sport", "dport", "src", "dst", "ctstate", "family", "rpfilter"}
# iptables' tables run at fixed priorities (nft's chains carry theirs in a policy's position)
IPTABLES_PRIORITY = {"raw": -300, "mangle": -150, "nat": -100, "filter": 0, "security": 50}


@dataclass(frozen=True)
class FwRule:
    backend: str                 # "iptables" (iptables or ip6tables by family) | "nft"
    family: int                  # 4, 6, or 0: both (nft inet)
    table: str                   # filter, nat… (nft: the table's name)
    chain: str                   # FORWARD, DOCKER-USER… (nft: the chain's name)
    text: str                    # as the backend prints it: "-A FORWARD -i wg0 -j ACCEPT", "policy DROP"
    verdict: str                 # accept drop reject masquerade snat dnat jump goto return log… "" if none
    hook: str = ""               # the hook its chain runs on (a user chain: the hook that jumps to it)
    policy: bool = False
    target: str = ""             # for jump/goto: the chain jumped to
    handle: int = 0              # nft's rule handle (0: none)
    counted: bool = True         # False: no counter (nft without a `counter` statement)
    nft_family: str = ""         # nft table family: ip ip6 inet bridge…
    matches: tuple[tuple[str, str], ...] = ()
    position: int = 0            # order within its chain

    @property
    def drops(self) -> bool:
        return self.verdict in DROPS

    @property
    def is_policy(self) -> bool:
        return self.policy

    @property
    def catch_all(self) -> bool:
        """A rule that matches everything (``-A FORWARD -j DROP``): the end of a chain by another name."""
        return not self.policy and not self.matches

    def match(self, key: str) -> str | None:
        return next((v for k, v in self.matches if k == key), None)

    def for_family(self, family: int) -> bool:
        return self.family in (0, family)

    @property
    def place(self) -> str:
        """Where the rule is, as a person names it: ``FORWARD`` or ``inet filter forward``."""
        if self.backend == "nft":
            return f"{self.nft_family} {self.table} {self.chain}"
        return self.chain

    def to_json(self) -> dict:
        d = {"backend": self.backend, "family": self.family, "table": self.table, "chain": self.chain,
             "text": self.text, "verdict": self.verdict, "hook": self.hook}
        for k, default in (("policy", False), ("target", ""), ("handle", 0), ("counted", True),
                           ("nft_family", ""), ("position", 0)):
            if getattr(self, k) != default:
                d[k] = getattr(self, k)
        if self.matches:
            d["matches"] = [list(m) for m in self.matches]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "FwRule":
        return cls(d["backend"], d["family"], d["table"], d["chain"], d["text"], d["verdict"], d.get("hook", ""),
                   d.get("policy", False), d.get("target", ""), d.get("handle", 0), d.get("counted", True),
                   d.get("nft_family", ""), tuple(tuple(m) for m in d.get("matches", [])), d.get("position", 0))


@dataclass
class Packet:
    """What the evaluator knows of a packet; None: not known (a rule that asks is passed over)."""
    family: int
    iif: str | None = None
    oif: str | None = None
    proto: str | None = None     # icmp tcp udp (icmpv6 counts as icmp)
    sport: int | None = None
    dport: int | None = None
    src: str | None = None
    dst: str | None = None
    ctstate: str | None = "NEW"
    rpf: str | None = None       # the route back to src: "strict" (by iif), "loose" (by another), "none"


@dataclass
class Firewall:
    rules: dict[FwRule, int] = field(default_factory=dict)      # every rule and policy: packets before
    hits: list[tuple[FwRule, int]] = field(default_factory=list)  # what moved during the probe
    readable: bool = True

    # --- what the probe met ------------------------------------------------------------
    def dropped(self, hook: str, family: int | None = None) -> list[tuple[FwRule, int]]:
        """Drops (rules and policies) on ``hook``, or a hook before it on the packet's way, whose
        counters moved during the probe."""
        way = WAY.get(hook, (hook,))
        return [(r, n) for r, n in self.hits if r.hook in way and r.drops and not r.table == "nat"
                and (family is None or r.for_family(family))]

    def judged(self, hook: str, pkt: Packet) -> list[tuple[FwRule, int]]:
        """The drop on the way to ``hook`` that the ruleset gives for ``pkt``, when the rule or policy
        that decides it has no counter (native nftables counts only with a ``counter`` statement,
        and never a policy): [(rule, 0)], or [] when the ruleset lets it through or a rule with a
        counter decides (its counter would have moved). Call it for a packet known to be lost."""
        for h in WAY.get(hook, (hook,)):
            got = self.decide(h, _at(h, pkt), lost=True)
            if got and got[0] == "drop" and got[1] is not None:
                return [] if got[1].counted else [(got[1], 0)]
        return []

    def ruled(self, hook: str, pkt: Packet) -> list[tuple[FwRule, int]]:
        """The rule on the way to ``hook`` that drops ``pkt``, counted or not, from the rules alone:
        for a packet that may not have been sent during the probe (WireGuard sends a handshake at
        most once in 5 s). [(rule, 0)], or []. A policy is never the answer: the ACCEPT rules
        before it may ask what is not known of the packet (a kill switch's mark)."""
        for h in WAY.get(hook, (hook,)):
            got = self.decide(h, _at(h, pkt))
            if got and got[0] == "drop" and got[1] is not None and not got[1].is_policy:
                return [(got[1], 0)]
        return []

    def reverse_path_drops(self, family: int) -> list[tuple[FwRule, int]]:
        """Drops by a reverse-path rule (before routing: prerouting) that moved during the probe."""
        return [(r, n) for r, n in self.hits if r.drops and r.match("rpfilter") and r.for_family(family)]

    def moved(self, rule: FwRule) -> int:
        return next((n for r, n in self.hits if r == rule), 0)

    # --- the ruleset -------------------------------------------------------------------
    def chain(self, rule: FwRule) -> list[FwRule]:
        """The rules of ``rule``'s chain, in order (its policy last)."""
        return self.chain_of(rule.backend, rule.nft_family, rule.family, rule.table, rule.chain)

    def chain_of(self, backend: str, nft_family: str, family: int, table: str, chain: str) -> list[FwRule]:
        rs = [r for r in self.rules if r.backend == backend and r.nft_family == nft_family and
              r.family == family and r.table == table and r.chain == chain]
        return sorted(rs, key=lambda r: (r.policy, r.position))

    def on_hook(self, hook: str, family: int) -> list[FwRule]:
        return [r for r in self.rules if r.hook == hook and r.for_family(family)]

    def stateful(self, hook: str, family: int) -> bool:
        """Does a chain on ``hook`` select by connection state (so replies pass as ESTABLISHED)?"""
        return any(r.match("ctstate") for r in self.on_hook(hook, family))

    def translating(self, family: int | None = None) -> list[FwRule]:
        """Rules that rewrite the source address (MASQUERADE, SNAT)."""
        return [r for r in self.rules if r.verdict in ("masquerade", "snat")
                and (family is None or r.for_family(family))]

    def base_chains(self, hook: str, family: int) -> list[tuple[FwRule, list[FwRule]]]:
        """(policy, rules) of the filtering base chains on ``hook`` for ``family``, in the order
        the kernel runs them (by priority: iptables' tables at their fixed ones, nft's chains
        carry theirs in the policy's position)."""
        out = []
        for p in sorted((r for r in self.rules if r.policy and r.hook == hook and r.for_family(family)
                         and r.table != "nat" and r.verdict in ("accept", "drop")), key=_priority):
            out.append((p, [r for r in self.chain(p) if not r.policy]))
        return out

    def decide(self, hook: str, pkt: Packet, lost: bool = False) -> tuple[str, FwRule | None] | None:
        """What the chains on ``hook`` do with ``pkt``: ("accept"|"drop", the rule or policy that
        decided). A rule that asks what is not known of the packet is passed over, as a person
        would read it; ``lost`` (the packet is known to be lost): such a rule that drops is
        taken for the one that did."""
        last = None
        for policy, rules in self.base_chains(hook, pkt.family):
            got = self._walk(rules, pkt, 0, lost)
            verdict, rule = got if got != "end" else (policy.verdict, policy)
            if verdict in DROPS:
                return "drop", rule
            last = ("accept", rule)
        return last or ("accept", None)

    def _walk(self, rules: list[FwRule], pkt: Packet, depth: int, lost: bool = False):
        for r in rules:
            m = matches(r, pkt)
            if m is None and lost and r.drops:
                return "drop", r
            if not m:
                continue             # no match, or undecidable for this packet: passed over
            if r.verdict in ("accept", "drop", "reject"):
                return ("drop" if r.verdict == "reject" else r.verdict), r
            if r.verdict in ("jump", "goto") and depth < 16:
                sub = [x for x in self.chain_of(r.backend, r.nft_family, r.family, r.table, r.target) if not x.policy]
                got = self._walk(sub, pkt, depth + 1, lost)
                if got != "end":
                    return got
                if r.verdict == "goto":
                    return "end"
            if r.verdict == "return":
                return "end"
        return "end"


def _priority(policy: FwRule) -> int:
    if policy.backend == "iptables":
        return IPTABLES_PRIORITY.get(policy.table, 0)
    return policy.position


def _at(hook: str, pkt: Packet) -> Packet:
    """The packet as a hook sees it: before routing there is no output interface yet, a packet
    the node sends itself has no input interface."""
    from dataclasses import replace
    if hook in ("ingress", "prerouting", "input"):
        return replace(pkt, oif="")
    if hook == "output":
        return replace(pkt, iif="")
    return pkt


def matches(rule: FwRule, pkt: Packet) -> bool | None:
    """Does ``rule`` match ``pkt``? False as soon as one match it can judge fails; None when all
    it can judge hold and it asks something more the evaluator cannot judge."""
    unknown = False
    for key, value in rule.matches:
        got = _one(key, value, pkt)
        if got is False:
            return False
        unknown = unknown or got is None
    return None if unknown else True


def _one(key: str, value: str, pkt: Packet) -> bool | None:
    if key not in JUDGED:
        return None
    neg = value.startswith("!")
    want = value[1:] if neg else value
    have = pkt.family if key == "family" else pkt.rpf if key == "rpfilter" else getattr(pkt, key)
    if have is None:
        return None
    items = _items(want)
    if key in ("iif", "oif"):
        ok = any(_iface_match(w, have) for w in items)
    elif key == "proto":
        ok = any(_proto_match(w, have, pkt.family) for w in items)
    elif key in ("sport", "dport"):
        ok = _port_match(",".join(items), int(have))
    elif key in ("src", "dst"):
        got = [_addr_match(w, have) for w in items]
        if None in got:
            return None                              # not an address, network or range
        ok = any(got)
    elif key == "family":
        ok = want == str(have)
    elif key == "rpfilter":              # passes the strict test (back by iif), or the loose one
        ok = have == "strict" or (want == "loose" and have == "loose")
    else:                                            # ctstate: any of the listed states
        ok = have in want.split(",")
    return ok != neg


def _items(value: str) -> list[str]:
    """The values of a match: one, or a set written ``{a,b}`` or ``a,b`` (an empty set: none)."""
    inner = value[1:-1] if value.startswith("{") and value.endswith("}") else value
    return [w.strip() for w in inner.split(",") if w.strip()]


def _iface_match(want: str, have: str) -> bool:
    return have.startswith(want[:-1]) if want.endswith(("+", "*")) else want == have


ICMP6 = ("icmpv6", "ipv6-icmp")


def _proto_match(want: str, have: str, family: int) -> bool:
    """The packet's protocol (``icmp`` stands for ICMPv6 in an IPv6 packet)."""
    if want == "all":
        return True
    if have == "icmp" and family == 6:
        return want in ICMP6
    return want == have


def _addr_match(want: str, have: str) -> bool | None:
    lo, dash, hi = want.partition("-")
    a, b, x = ip(lo), ip(hi), ip(have)
    if dash and a and b:
        return x is not None and x.version == a.version == b.version and a <= x <= b
    if not net(want):
        return None
    return in_nets(have, [want])


def _port_match(want: str, have: int) -> bool:
    for part in want.replace(":", "-").split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (hi.isdigit() and int(lo) <= have <= int(hi) or not hi and int(lo) == have):
            return True
    return False
