"""The iptables provider: ``iptables-save -c`` and ``ip6tables-save -c`` read into neutral rules,
and the iptables/ip6tables commands that take a rule out or let a packet through.

Works the same for iptables-legacy and iptables-nft (both print the same save format). A user
chain gets the hook of the built-in chain that jumps to it (Docker's DOCKER-USER runs on
forward), so a drop there is found like one in FORWARD.
"""
from __future__ import annotations

import re
import shlex

from .rules import FwRule

READS = {4: ("iptables-save", "-c"), 6: ("ip6tables-save", "-c")}
PROGRAM = {4: "iptables", 6: "ip6tables"}
COUNTER_RE = re.compile(r"^\[(\d+):(\d+)\] (-A (\S+) .*)$")
POLICY_RE = re.compile(r"^:(\S+) (ACCEPT|DROP|-) \[(\d+):(\d+)\]$")
BUILTIN_HOOK = {"PREROUTING": "prerouting", "INPUT": "input", "FORWARD": "forward", "OUTPUT": "output",
                "POSTROUTING": "postrouting"}
VERDICTS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "MASQUERADE": "masquerade",
            "SNAT": "snat", "DNAT": "dnat", "RETURN": "return", "LOG": "log", "MARK": "mark",
            "CONNMARK": "mark", "TCPMSS": "mangle"}
OPTS = {"-i": "iif", "--in-interface": "iif", "-o": "oif", "--out-interface": "oif", "-p": "proto",
        "--protocol": "proto", "--dport": "dport", "--destination-port": "dport", "--sport": "sport",
        "--source-port": "sport", "-s": "src", "--source": "src", "-d": "dst", "--destination": "dst",
        "--ctstate": "ctstate", "--state": "ctstate", "--dports": "dport", "--sports": "sport"}
PLAIN_MODULES = {"conntrack", "state", "tcp", "udp", "multiport", "icmp", "icmp6", "comment"}
RPFILTER_OPTS = {"--loose", "--validmark", "--accept-local", "--invert"}


def parse(text: str, family: int = 4) -> dict[FwRule, int]:
    """Every rule and built-in chain policy of a save file, with its packet count."""
    counts: dict[FwRule, int] = {}
    raw: list[tuple[str, str, str, int, int]] = []      # (table, chain, rule, packets, position)
    policies: list[tuple[str, str, str, int]] = []
    table, pos = "", 0
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif (m := POLICY_RE.match(line)) and m[2] != "-":
            policies.append((table, m[1], m[2], int(m[3])))
        elif m := COUNTER_RE.match(line):
            pos += 1
            raw.append((table, m[4], m[3], int(m[1]), pos))
    hooks = _hooks(raw)
    for table, chain, verdict, n in policies:
        r = FwRule("iptables", family, table, chain, f"policy {verdict}", VERDICTS[verdict],
                   BUILTIN_HOOK.get(chain, ""), policy=True)
        counts[r] = n
    for table, chain, rule, n, position in raw:
        words = rule.split()
        target = words[words.index("-j") + 1] if "-j" in words[:-1] else \
            words[words.index("-g") + 1] if "-g" in words[:-1] else ""
        verdict = VERDICTS.get(target, "goto" if "-g" in words else "jump" if target else "")
        r = FwRule("iptables", family, table, chain, rule, verdict, hooks.get((table, chain), ""),
                   target=target if verdict in ("jump", "goto") else "", matches=_matches(rule),
                   position=position)
        counts[r] = n
    return counts


def _hooks(raw) -> dict[tuple[str, str], str]:
    """The hook every chain runs on: a built-in chain's own, a user chain the first hook whose
    chains jump to it (followed through chains that jump further)."""
    out = {(t, c): BUILTIN_HOOK[c] for t, c, *_ in raw if c in BUILTIN_HOOK}
    jumps = []
    for t, c, rule, *_ in raw:
        w = rule.split()
        for flag in ("-j", "-g"):
            if flag in w[:-1]:
                jumps.append((t, c, w[w.index(flag) + 1]))
    for _ in range(8):
        grew = False
        for t, c, target in jumps:
            if (t, c) in out and (t, target) not in out and target not in VERDICTS:
                out[(t, target)] = out[(t, c)]
                grew = True
        if not grew:
            break
    return out


def _matches(rule: str) -> tuple[tuple[str, str], ...]:
    """The rule's matches in neutral words; anything not understood is ("other", word)."""
    try:
        words = shlex.split(rule)[2:]
    except ValueError:
        return (("other", rule),)
    out: list[tuple[str, str]] = []
    i, neg = 0, False
    while i < len(words):
        w = words[i]
        if w == "!":
            neg, i = True, i + 1
            continue
        if w in ("-j", "-g"):
            break                              # the target and its own options
        if w == "-m" and i + 1 < len(words) and words[i + 1] == "rpfilter":
            # reverse-path filtering (IPv6 has no rp_filter sysctl): "!" when it matches what fails
            i += 2
            opts = set()
            while i < len(words) and words[i] in RPFILTER_OPTS:
                opts.add(words[i])
                i += 1
            out.append(("rpfilter", ("!" if "--invert" in opts else "") + ("loose" if "--loose" in opts else "strict")))
        elif w == "-m" and i + 1 < len(words):
            if words[i + 1] not in PLAIN_MODULES:
                out.append(("other", f"-m {words[i + 1]}"))
            i += 2
        elif w == "--comment" and i + 1 < len(words):
            i += 2
        elif w in OPTS and i + 1 < len(words):
            value = words[i + 1]
            if OPTS[w] == "proto" and value in ("ipv6-icmp", "icmpv6"):
                value = "icmpv6"
            out.append((OPTS[w], ("!" if neg else "") + value))
            i += 2
        else:
            out.append(("other", w))
            i += 1
        neg = False
    return tuple(out)


def args(rule: FwRule) -> list[str]:
    """The rule's words after ``-A CHAIN``."""
    return shlex.split(rule.text)[2:] if not rule.policy else []


def undo(rule: FwRule) -> tuple[str, ...]:
    """The command that takes this rule out again (or opens the policy)."""
    prog = PROGRAM[rule.family]
    if rule.policy:
        return (prog, "-t", rule.table, "-P", rule.chain, "ACCEPT")
    return (prog, "-t", rule.table, "-D", rule.chain, *args(rule))


def loosen(rule: FwRule) -> list[tuple[str, ...]]:
    """The same reverse-path rule in loose mode (a source routed back by any interface passes):
    taken out, and put back first in its chain."""
    words = args(rule)
    i = words.index("rpfilter") + 1
    loose = words[:i] + ["--loose"] + words[i:] if "--loose" not in words else words
    return [undo(rule), (PROGRAM[rule.family], "-t", rule.table, "-I", rule.chain, *loose)]


def accept(family: int, chain: str, *, first: bool, iif: str | None = None, oif: str | None = None,
           proto: str | None = None, dport: int | None = None, established: bool = False,
           table: bool = True) -> tuple[str, ...]:
    """An ACCEPT rule for exactly this traffic: inserted at the top (``first``) or appended (it
    then runs before the chain's policy). ``table``: name the filter table (iptables' default)."""
    argv = [PROGRAM[family], *(("-t", "filter") if table else ()), "-I" if first else "-A", chain]
    if established:
        argv += ["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED"]
    if iif:
        argv += ["-i", iif]
    if oif:
        argv += ["-o", oif]
    if proto:
        argv += ["-p", proto]
    if dport:
        argv += ["--dport", str(dport)]
    return tuple(argv + ["-j", "ACCEPT"])


def masquerade(family: int, src: str, oif: str) -> tuple[str, ...]:
    return (PROGRAM[family], "-t", "nat", "-A", "POSTROUTING", "-s", src, "-o", oif, "-j", "MASQUERADE")
