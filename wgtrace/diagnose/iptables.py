"""Firewall counters from ``iptables-save -c``: which rules and policies a probe met.

The counters are read before and after the probe; the ones that moved are its evidence.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

COUNTER_RE = re.compile(r"^\[(\d+):(\d+)\] (-A (\S+) .*)$")
POLICY_RE = re.compile(r"^:(\S+) (ACCEPT|DROP|-) \[(\d+):(\d+)\]$")


@dataclass(frozen=True)
class Counter:
    table: str
    chain: str
    rule: str          # "-A FORWARD -i wg0 -j ACCEPT", or "policy DROP"
    target: str        # ACCEPT, DROP, MASQUERADE, REJECT… or the policy

    @property
    def is_policy(self) -> bool:
        return self.rule.startswith("policy ")

    @property
    def drops(self) -> bool:
        return self.target in ("DROP", "REJECT")

    @property
    def args(self) -> list[str]:
        """The rule's words after ``-A CHAIN``."""
        return shlex.split(self.rule)[2:] if not self.is_policy else []

    def option(self, *names: str) -> str | None:
        """The value of an option of the rule (``-i``/``--in-interface`` …), None if absent."""
        words = self.args
        for i, w in enumerate(words[:-1]):
            if w in names:
                return words[i + 1]
        return None

    def undo(self) -> tuple[str, ...]:
        """The command that takes this rule out again (or opens the policy)."""
        if self.is_policy:
            return ("iptables", "-t", self.table, "-P", self.chain, "ACCEPT")
        return ("iptables", "-t", self.table, "-D", self.chain, *self.args)


def parse_iptables_save(text: str) -> dict[Counter, int]:
    counts: dict[Counter, int] = {}
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif (m := POLICY_RE.match(line)) and m[2] != "-":
            counts[Counter(table, m[1], f"policy {m[2]}", m[2])] = int(m[3])
        elif m := COUNTER_RE.match(line):
            words = m[3].split()
            target = words[words.index("-j") + 1] if "-j" in words else ""
            counts[Counter(table, m[4], m[3], target)] = int(m[1])
    return counts


def counter_diff(before: dict[Counter, int], after: dict[Counter, int]) -> list[tuple[Counter, int]]:
    return [(c, n - before.get(c, 0)) for c, n in after.items() if n - before.get(c, 0) > 0]
