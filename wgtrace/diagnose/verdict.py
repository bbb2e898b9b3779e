"""What a diagnosis concludes, as small records: the cause, where it stopped, the evidence, the fix.

Texts are not stored here: a verdict carries keys and parameters, and texts/<lang>.toml puts
them into words when shown (``Evidence.detail(lang)``, ``explain``).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Literal, get_args

from ..trace.path import Place

Cause = Literal["reachable", "route-missing", "wg-allowed-ips", "wg-no-handshake", "wg-stale-session",
                "forwarding-disabled", "forward-filtered", "nat-missing", "input-filtered", "output-filtered",
                "port-closed", "link-down", "neighbor-unreachable", "rp-filter", "mtu", "lost-between",
                "inconsistent"]
CAUSES: tuple[str, ...] = get_args(Cause)

# What a piece of evidence is: where it was read or seen. Firewall evidence names its tool.
Kind = Literal["capture", "route", "sysctl", "link", "wireguard", "conntrack", "kernel", "arp", "ndp", "nat",
               "iptables", "ip6tables", "nft", "state", "unseen"]
KINDS: tuple[str, ...] = get_args(Kind)

Stop = Place          # a verdict's stop is a place on the path: node, interface, phase


@dataclass(frozen=True)
class Evidence:
    node: str
    kind: str                      # capture, iptables, route, sysctl, link, wireguard, conntrack, kernel…
    key: str                       # texts: evidence.<key>
    params: tuple = ()             # (name, value) pairs: hashable, so repeated lines are seen

    def detail(self, lang: str = "en") -> str:
        from ..texts import say
        return say(f"evidence.{self.key}", lang, **dict(self.params))

    def to_json(self, lang: str = "en") -> dict:
        return {"node": self.node, "kind": self.kind, "detail": self.detail(lang)}

    def meaning(self) -> dict:
        """What it says, without words: its key and parameters (what fixtures compare)."""
        return {"node": self.node, "kind": self.kind, "key": self.key, "params": _plain(dict(self.params))}


@dataclass(frozen=True)
class Fix:
    """One command for one node, as an argument list (never a shell line built from state)."""
    node: str
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def to_json(self) -> dict:
        return {"node": self.node, "command": self.command}


@dataclass
class Verdict:
    cause: Cause
    stop: Place | None
    evidence: list[Evidence] = field(default_factory=list)
    fix: list[Fix] = field(default_factory=list)
    params: dict = field(default_factory=dict)           # fills the explanation's template

    def add(self, node: str, kind: Kind, key: str, /, **params) -> "Verdict":
        e = Evidence(node, kind, key, tuple(params.items()))
        if e not in self.evidence:
            self.evidence.append(e)
        return self

    def lead(self, node: str, kind: str, key: str, /, **params) -> "Verdict":
        """Evidence that goes first: what was seen before the finding of another check."""
        self.evidence.insert(0, Evidence(node, kind, key, tuple(params.items())))
        return self

    def fixes(self, node: str, *argvs) -> "Verdict":
        self.fix += [Fix(node, tuple(a)) for a in argvs]
        return self

    def to_json(self, lang: str = "en") -> dict:
        return {"cause": self.cause, "stop": self.stop.to_json() if self.stop else None,
                "evidence": [e.to_json(lang) for e in self.evidence],
                "fix": [f.to_json() for f in self.fix]}

    def meaning(self) -> dict:
        """The verdict without its words: cause, stop, evidence keys and parameters, fixes. Replayed
        fixtures compare this, so editing a text never breaks one."""
        s = self.stop
        return {"cause": self.cause, "stop": {"node": s.node, "iface": s.iface, "phase": s.phase} if s else None,
                "evidence": [e.meaning() for e in self.evidence], "fix": [f.to_json() for f in self.fix]}


def _plain(v):
    """Parameters as JSON keeps them: tuples (a word's key: ("@", "word.x")) become lists, a story
    its key and parameters, anything else its text."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if hasattr(v, "kind") and hasattr(v, "params"):
        return {"story": v.kind, "params": _plain(v.params)}
    return str(v)
