"""What a diagnosis concludes, as small records: the cause, where it stopped, the evidence, the fix.

Texts are not stored here: a verdict carries keys and parameters, and texts/<lang>.toml puts
them into words when shown (``Evidence.detail(lang)``, ``explain``).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field

CAUSES = ("reachable", "route-missing", "wg-allowed-ips", "wg-no-handshake", "wg-stale-session",
          "forwarding-disabled", "forward-filtered", "nat-missing", "input-filtered", "output-filtered",
          "port-closed", "link-down", "neighbor-unreachable", "rp-filter", "mtu", "inconsistent")


@dataclass(frozen=True)
class Stop:
    node: str
    iface: str | None
    phase: str                     # request | reply

    def to_json(self) -> dict:
        # "direction" is the name older readers know; "phase" says what it is
        return {"node": self.node, "iface": self.iface, "direction": self.phase, "phase": self.phase}


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
    cause: str
    stop: Stop | None
    evidence: list[Evidence] = field(default_factory=list)
    fix: list[Fix] = field(default_factory=list)
    params: dict = field(default_factory=dict)           # fills the explanation's template
    note: str = ""                                       # texts: note.<key>, said after the fix

    def add(self, node: str, kind: str, key: str, /, **params) -> "Verdict":
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
