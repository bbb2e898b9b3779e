"""Checks for single fields of a lab file: addresses, names, sysctls, iptables rules, free text.

A lab file is data from anybody (instructors share them, students download them), so every
field that ends up in a command is checked to be exactly what it claims: an iptables rule is a
list of plain words with -A or -I and nothing that makes iptables run a program; a sysctl is a
``net.`` key and a plain value. Commands are argument lists, never shell, but a field that
is not what it says is refused here with its key, before anything is built.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
from typing import Any

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,13}$")
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")   # no '-': it separates lab and node in names
IFACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")
SYSCTL_KEY_RE = re.compile(r"^net(\.[A-Za-z0-9_-]+)+$")
SYSCTL_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,32}( [A-Za-z0-9_.:-]{1,32}){0,7}$")
WORD_RE = re.compile(r"^[A-Za-z0-9_.:/,!+=@%^-]+$")          # one word of an iptables rule
COMMENT_RE = re.compile(r"^[A-Za-z0-9_.:/,!+=@% -]{0,200}$")
CHAIN_RE = re.compile(r"^[A-Za-z0-9_-]{1,28}$")
TABLES = ("filter", "nat", "mangle", "raw")
# options that make iptables act beyond adding one rule (--modprobe runs a program)
FORBIDDEN = {"--modprobe", "-M", "-F", "--flush", "-X", "--delete-chain", "-Z", "--zero", "-N",
             "--new-chain", "-P", "--policy", "-D", "--delete", "-R", "--replace", "-E", "--rename-chain"}


class Errors:
    """Problems found so far, each with the file and the key it concerns."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, key: str, what: str) -> None:
        self.items.append(f"{self.path}: {key}: {what}")


def cidr(errs: Errors, key: str, value: Any) -> str | None:
    """An interface address with its prefix length, either family: ``10.0.0.1/24``, ``fd00::1/64``."""
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        i = ipaddress.ip_interface(value)
        return str(i) if i.version == 6 else value      # IPv6 as the kernel writes it
    except ValueError:
        errs.add(key, f"{value!r} is not an address with a prefix length (like 10.0.0.1/24 or fd00::1/64)")
        return None


def cidrs(errs: Errors, key: str, value: Any) -> tuple[str, ...]:
    """One address with a prefix, or a list of them (an interface may have several, of both families)."""
    if isinstance(value, list):
        if not value:
            errs.add(key, "an empty list: give at least one address, like \"10.0.0.1/24\"")
        return tuple(c for j, v in enumerate(value) if (c := cidr(errs, f"{key}[{j}]", v)))
    c = cidr(errs, key, value)
    return (c,) if c else ()


def network(errs: Errors, key: str, value: Any) -> str | None:
    """A network as a route or allowed-ips names it (no host bits set), either family, or "default"."""
    if value == "default":
        return "default"
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        loose = _loose_network(value)
        if loose:
            errs.add(key, f"{value!r} has host bits set: the network is {loose}")
        else:
            errs.add(key, f"{value!r} is not a network (like 10.10.13.0/24 or fd00:1::/64) or \"default\"")
        return None


def _loose_network(value: Any) -> str | None:
    try:
        return str(ipaddress.ip_network(value, strict=False)) if isinstance(value, str) and "/" in value else None
    except ValueError:
        return None


def ip(errs: Errors, key: str, value: Any) -> str | None:
    try:
        if not isinstance(value, str):
            raise ValueError
        return str(ipaddress.ip_address(value))
    except ValueError:
        errs.add(key, f"{value!r} is not an IP address")
        return None


def iface(errs: Errors, key: str, value: Any) -> str | None:
    if isinstance(value, str) and IFACE_RE.match(value):
        return value
    errs.add(key, f"{value!r} is not an interface name (a letter, then letters, digits, '_', '.', '-'; "
                  f"at most 15 characters)")
    return None


def integer(errs: Errors, key: str, value: Any, lo: int, hi: int, what: str) -> int | None:
    if type(value) is int and lo <= value <= hi:
        return value
    errs.add(key, f"{value!r} is not {what} ({lo}..{hi})")
    return None


def text(errs: Errors, key: str, value: Any, limit: int = 300) -> str:
    """Free text (descriptions, titles): one line, printable, bounded."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 or ord(c) == 127 for c in value):
        errs.add(key, f"must be one line of text, at most {limit} characters")
        return ""
    return value


def table_list(errs: Errors, key: str, value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        errs.add(key, "must be a list of tables")
        return []
    return value


def unknown(errs: Errors, key: str, d: dict, allowed: set[str]) -> None:
    for k in d:
        if k not in allowed:
            errs.add(f"{key}.{k}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def sysctl(errs: Errors, key: str, k: Any, v: Any) -> tuple[str, str] | None:
    ok = True
    if not isinstance(k, str) or not SYSCTL_KEY_RE.match(k):
        errs.add(f"{key}.key", "required: a net.* sysctl (only the node's own network sysctls can be set)")
        ok = False
    value = str(v) if type(v) in (int, str) else None
    if value is None or not SYSCTL_VALUE_RE.match(value):
        errs.add(f"{key}.value", f"{v!r} is not a sysctl value (numbers or words, at most 8)")
        ok = False
    return (k, value) if ok else None


def iptables_rule(errs: Errors, key: str, rule: Any, fam: int = 4) -> str | None:
    """An iptables (``fam`` 6: ip6tables) rule in its own words: ``[-t TABLE] -A|-I CHAIN [N] MATCH… -j TARGET``."""
    prog = "ip6tables" if fam == 6 else "iptables"
    example = 'like "-t nat -A POSTROUTING -o wan -j MASQUERADE"'
    if not isinstance(rule, str) or not rule.strip():
        errs.add(key, f"required: an {prog} rule with -A or -I, {example}")
        return None
    try:
        words = shlex.split(rule)
    except ValueError:
        errs.add(key, f"unbalanced quotes; an iptables rule is plain words, {example}")
        return None
    for i, w in enumerate(words):
        comment = i > 0 and words[i - 1] == "--comment"
        if not (COMMENT_RE if comment else WORD_RE).match(w):
            errs.add(key, f"{w!r} is not a plain word of an iptables rule (no spaces, quotes or shell "
                          f"characters such as ; | & $ ` < >)")
            return None
        if w in FORBIDDEN or w.split("=")[0] in FORBIDDEN:
            errs.add(key, f"{w} is not allowed: a lab file's rule adds one rule (-A or -I), nothing else")
            return None
    verbs = [i for i, w in enumerate(words) if w in ("-A", "-I", "--append", "--insert")]
    if len(verbs) != 1 or verbs[0] + 1 >= len(words) or not CHAIN_RE.match(words[verbs[0] + 1]):
        errs.add(key, f"required: exactly one -A or -I and its chain, {example}")
        return None
    if "-t" in words or "--table" in words:
        t = words.index("-t") if "-t" in words else words.index("--table")
        if t + 1 >= len(words) or words[t + 1] not in TABLES:
            errs.add(key, f"the table is one of {', '.join(TABLES)}")
            return None
    for i, w in enumerate(words[:-1]):
        if w in ADDRESS_OPTS:
            value = words[i + 1].lstrip("!")
            a = ipaddress.ip_address(value.split("/")[0].split("-")[0]) if _is_address(value) else None
            if a is not None and a.version != fam:
                errs.add(key, f"{w} {words[i + 1]} is an IPv{a.version} address in an {prog} rule "
                              f"(IPv{fam}; the other family's rules go under {'iptables' if fam == 6 else 'ip6tables'})")
                return None
    return rule


ADDRESS_OPTS = {"-s", "--source", "-d", "--destination", "--to-source", "--to-destination", "--to"}


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value.split("/")[0].split("-")[0])
        return True
    except ValueError:
        return False


NFT_TOKEN_RE = re.compile(r'"[^"\\\n]*"|[^\s"]+')
NFT_WORD_RE = re.compile(r"^[A-Za-z0-9_.:/,!=@%{}<>;*+\[\]-]+$")     # one unquoted word of an nft command
NFT_VERBS = ("add", "insert", "create")
NFT_OBJECTS = ("table", "chain", "rule", "set", "map", "element", "counter")
NFT_FAMILIES = ("ip", "ip6", "inet", "bridge", "netdev", "arp")


def nft_command(errs: Errors, key: str, text: Any) -> str | None:
    """One nft command that adds to the ruleset, in nft's own words: ``add|insert|create`` a
    table, chain, rule, set, map, element or counter of a named family. Words are plain (or a
    quoted string without backslashes); ``;`` only inside braces (one command per item); nothing
    that reads a file (``include``) or defines variables."""
    example = 'like "add rule inet filter forward iifname eth1 oifname wg0 accept"'
    if not isinstance(text, str) or not text.strip() or len(text) > 600 or "\n" in text:
        errs.add(key, f"required: one nft command on one line, {example}")
        return None
    words = NFT_TOKEN_RE.findall(text)
    if "".join(words) != "".join(text.split()):
        errs.add(key, f"unbalanced quotes; an nft command is plain words and quoted names, {example}")
        return None
    depth = 0
    for w in words:
        if w.startswith('"'):
            continue
        if not NFT_WORD_RE.match(w) or w in ("include", "define", "redefine", "undefine"):
            errs.add(key, f"{w!r} is not allowed in a lab file's nft command (plain words, quoted names; "
                          f"no include, define, # or \\)")
            return None
        depth += w.count("{") - w.count("}")
        if depth < 0 or (";" in w and depth == 0 and not w.endswith("}")):
            errs.add(key, "one command per item: ';' only inside braces, as in a chain's { type … ; policy … ; }")
            return None
    if depth:
        errs.add(key, "unbalanced braces")
        return None
    if len(words) < 3 or words[0] not in NFT_VERBS or words[1] not in NFT_OBJECTS or words[2] not in NFT_FAMILIES:
        errs.add(key, f"required: {'|'.join(NFT_VERBS)} {'|'.join(NFT_OBJECTS)} FAMILY …, with the family "
                      f"named ({', '.join(NFT_FAMILIES)}), {example}")
        return None
    return " ".join(words)
