"""One hook command (already split, ``%i`` and variables put in) read as what a lab file can say.

- ``iptables``/``ip6tables`` (also ``-nft``/``-legacy``, by path or not): one ``-A``/``-I`` rule in
  a built-in chain becomes a lab-file rule string, checked by the very check a lab file's rules
  get (model/fields.py); ``-P`` a chain policy; ``-w`` (wait for the lock) is dropped.
- ``sysctl [-w] KEY=VALUE`` and ``echo VALUE > /proc/sys/net/…`` become sysctls (``net.*`` only).
- ``ip route add``, ``ip rule add``, ``ip address add … dev IFACE`` become routes, rules, addresses
  when every word of them is one a lab file has.
In a down hook, what undoes (``-D``, ``del``, a sysctl back) is ``Undo``; anything else is ``Skip``
with the key of the reason (``wgquick_hook.<why>``).
"""
from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field

IPTABLES_RE = re.compile(r"^ip(6)?tables(-nft|-legacy)?$")
BUILTIN = {"filter": {"INPUT", "FORWARD", "OUTPUT"},
           "nat": {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
           "mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
           "raw": {"PREROUTING", "OUTPUT"}}
VERBS = {"-A": "append", "--append": "append", "-I": "insert", "--insert": "insert", "-D": "delete",
         "--delete": "delete", "-C": "check", "--check": "check", "-P": "policy", "--policy": "policy",
         "-N": "new-chain", "--new-chain": "new-chain", "-F": "flush", "--flush": "flush",
         "-X": "delete-chain", "--delete-chain": "delete-chain", "-Z": "zero", "--zero": "zero",
         "-R": "replace", "--replace": "replace", "-E": "rename-chain", "--rename-chain": "rename-chain",
         "-L": "list", "--list": "list", "-S": "list", "--list-rules": "list"}
QUIET = {"true", ":", "echo", "printf", "logger", "sleep"}
NAMED = {"firewall-cmd": "firewalld", "ufw": "ufw", "nft": "nft", "resolvectl": "dns", "resolvconf": "dns",
         "systemd-resolve": "dns", "systemctl": "service", "service": "service", "iptables-restore": "restore",
         "ip6tables-restore": "restore", "iptables-save": "restore", "bash": "script", "sh": "script"}


@dataclass(frozen=True)
class Action:
    kind: str          # iptables, ip6tables, sysctl, route, rule, policy, policy6, address
    value: object      # a rule string; (key, value); a route or rule table; (chain, target); a CIDR
    line: int = 0
    phase: str = ""


@dataclass(frozen=True)
class Skip:
    why: str
    params: dict = field(default_factory=dict)


class Undo:
    """A down hook's command that takes back what an up hook did."""


def read_command(words: list[str], redirects: list[tuple[str, str]], down: bool, iface: str,
                 chains: set[str]) -> list[Action] | Skip | Undo:
    while words and words[0] in ("sudo", "command", "exec"):
        words = words[1:]
    if not words:
        return []
    prog = words[0].rsplit("/", 1)[-1]
    if prog in ("echo", "printf") and any(t.startswith("/proc/sys/") for _, t in redirects):
        return _proc_sysctl(words, redirects, down)
    bad = next((t for op, t in redirects if t != "/dev/null" and not (op == ">&" and t.isdigit())), None)
    if bad:
        return Skip("redirect", {"target": bad})
    if prog in QUIET:
        return []
    m = IPTABLES_RE.match(prog)
    if m:
        return iptables(words[1:], 6 if m.group(1) else 4, down, chains)
    if prog == "sysctl":
        return sysctl(words[1:], down)
    if prog == "ip":
        return ip(words[1:], down, iface)
    if prog == "wg":
        return [] if words[1:2] in (["show"], ["showconf"], []) else \
            Skip("wg-key" if "private-key" in words else "wg-set")
    if down and prog == "firewall-cmd" and any(w.startswith("--remove") for w in words):
        return Undo()
    if prog in NAMED:
        return Skip(NAMED[prog])
    if "/" in words[0] or prog.endswith(".sh"):
        return Skip("script", {"program": words[0]})
    return Skip("program", {"program": prog})


def is_check_then_add(check: list[str], add: list[str]) -> bool:
    """``iptables -C RULE`` followed (after ``||``) by ``iptables -A|-I RULE``: add unless present."""
    prog = [w[0].rsplit("/", 1)[-1] for w in (check, add) if w]
    if len(prog) != 2 or prog[0] != prog[1] or not IPTABLES_RE.match(prog[0]):
        return False
    a, b = _without_wait(check[1:]), _without_wait(add[1:])
    i = next((k for k, w in enumerate(a) if w in ("-C", "--check")), None)
    j = next((k for k, w in enumerate(b) if w in ("-A", "--append", "-I", "--insert")), None)
    if i is None or j is None:
        return False
    if b[j] in ("-I", "--insert") and j + 2 < len(b) and b[j + 2].isdigit():
        b = b[:j + 2] + b[j + 3:]                  # -I CHAIN 1: the position is not part of the rule
    return a[:i] + a[i + 1:] == b[:j] + b[j + 1:]


def _without_wait(args: list[str]) -> list[str]:
    out, skip_next = [], False
    for k, w in enumerate(args):
        if skip_next:
            skip_next = False
            continue
        if w in ("-w", "--wait", "-W", "--wait-interval"):
            skip_next = k + 1 < len(args) and args[k + 1].isdigit()
            continue
        if re.match(r"^--wait(-interval)?=\d+$", w):
            continue
        out.append(w)
    return out


def iptables(args: list[str], fam: int, down: bool, chains: set[str]) -> list[Action] | Skip | Undo:
    args = _without_wait(args)
    verbs = [(k, VERBS[w]) for k, w in enumerate(args) if w in VERBS]
    if len(verbs) != 1:
        return Skip("iptables-verbs")
    k, verb = verbs[0]
    table = args[args.index("-t") + 1] if "-t" in args[:-1] else \
        args[args.index("--table") + 1] if "--table" in args[:-1] else "filter"
    chain = args[k + 1] if k + 1 < len(args) else ""
    if down:
        return Undo() if verb in ("delete", "flush", "delete-chain", "zero", "policy", "check", "list") \
            else Skip("down")
    if verb == "new-chain":
        chains.add(chain)
        return Skip("custom-chain", {"chain": chain})
    if verb in ("check", "list"):
        return []
    if verb == "policy":
        target = args[k + 2] if k + 2 < len(args) else ""
        if table == "filter" and chain in BUILTIN["filter"] and target in ("ACCEPT", "DROP"):
            return [Action("policy6" if fam == 6 else "policy", (chain, target))]
        return Skip("policy", {"chain": chain, "target": target})
    if verb not in ("append", "insert"):
        return Skip("iptables-verb", {"verb": args[k]})
    target = args[args.index("-j") + 1] if "-j" in args[:-1] else ""
    if table in BUILTIN and chain not in BUILTIN[table] or chain in chains or target in chains:
        return Skip("custom-chain", {"chain": target if target in chains else chain})
    rule = shlex.join(args)
    why = lab_rule_problem(rule, fam)
    if why:
        return Skip("lab-check", {"check": why})
    return [Action("ip6tables" if fam == 6 else "iptables", rule)]


def lab_rule_problem(rule: str, fam: int = 4) -> str | None:
    """What the lab-file check says of this rule, or None when a lab file may hold it."""
    from ..model import fields as F
    errs = _Collect()
    F.iptables_rule(errs, "rule", rule, fam)
    return errs.whats[0] if errs.whats else None


class _Collect:
    """Enough of model.fields.Errors to hear what a check says, without a file or key around it."""

    def __init__(self) -> None:
        self.whats: list[str] = []

    def add(self, key: str, what: str) -> None:
        self.whats.append(what)


def sysctl(args: list[str], down: bool) -> list[Action] | Skip | Undo:
    from ..model import fields as F
    out = []
    for w in args:
        if w in ("-w", "--write", "-q", "--quiet", "-e", "--ignore"):
            continue
        if w.startswith("-"):
            return Skip("sysctl-load")
        key, eq, value = w.partition("=")
        if not eq:
            continue                                  # a read: nothing to reproduce
        errs = _Collect()
        kv = F.sysctl(errs, "sysctl", key.replace("/", "."), value)
        if kv is None:
            return Skip("lab-check", {"check": errs.whats[0]})
        out.append(Action("sysctl", kv))
    return Undo() if down and out else out


def _proc_sysctl(words: list[str], redirects, down: bool) -> list[Action] | Skip | Undo:
    values = [w for w in words[1:] if not w.startswith("-")]
    path = next(t for _, t in redirects if t.startswith("/proc/sys/"))
    return sysctl([f"{path[len('/proc/sys/'):]}={' '.join(values)}"], down)


def _is(word: str, full: str, shortest: int) -> bool:
    """ip's abbreviations: ``r``, ``ro``, ``route``…"""
    return len(word) >= shortest and full.startswith(word)


def ip(args: list[str], down: bool, iface: str) -> list[Action] | Skip | Undo:
    fam = 4
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-6", "-4"):
            fam = int(opt[1])
        elif opt in ("-f", "-family") and args:
            fam = 6 if args.pop(0) == "inet6" else 4
        else:
            return Skip("ip-word", {"word": opt})
    if len(args) < 2:
        return []
    obj, verb, rest = args[0], args[1], args[2:]
    if verb in ("show", "list", "lst", "get", "ls"):
        return []
    if any(_is(verb, v, 3) for v in ("delete", "flush")) or verb == "del":
        return Undo() if down else Skip("ip-delete")
    if down:
        return Skip("down")
    adding = _is(verb, "add", 1) or _is(verb, "replace", 3) or _is(verb, "append", 3)
    if _is(obj, "route", 1) and adding:
        return _route(rest, fam)
    if _is(obj, "rule", 2) and adding:
        return _rule(rest, fam)
    if _is(obj, "address", 1) and adding:
        return _address(rest, iface)
    if _is(obj, "link", 1):
        return Skip("ip-link")
    return Skip("ip-object", {"object": " ".join(args[:2])})


def _pairs(rest: list[str], first_free: bool) -> tuple[str | None, dict[str, str]] | Skip:
    free, opts = None, {}
    i = 0
    while i < len(rest):
        w = rest[i]
        if w in ("via", "dev", "table", "lookup", "fwmark", "priority", "pref", "preference",
                 "suppress_prefixlength", "from", "local") and i + 1 < len(rest):
            opts[w] = rest[i + 1]
            i += 2
        elif w == "not":
            opts["not"] = "1"
            i += 1
        elif first_free and free is None:
            free = w
            i += 1
        else:
            return Skip("ip-word", {"word": w})
    return free, opts


def _route(rest: list[str], fam: int) -> list[Action] | Skip:
    got = _pairs(rest, True)
    if isinstance(got, Skip):
        return got
    dst, o = got
    if dst is None or not set(o) <= {"via", "dev", "table"} or not ({"via", "dev"} & set(o)):
        return Skip("ip-word", {"word": next(iter(set(o) - {"via", "dev", "table"}), "dst")})
    try:
        if dst == "default":
            via_fam = ipaddress.ip_address(o["via"]).version if "via" in o else fam
            dst = "default" if via_fam == 4 else "::/0"
        else:
            dst = str(ipaddress.ip_network(dst if "/" in dst else str(ipaddress.ip_address(dst)), strict=True))
        via = str(ipaddress.ip_address(o["via"])) if "via" in o else None
    except ValueError:
        return Skip("ip-word", {"word": dst})
    route: dict = {"dst": dst}
    if via:
        route["via"] = via
    if "dev" in o:
        route["dev"] = o["dev"]
    table = o.get("table")
    if table is not None and table != "main":
        if not table.isdigit():
            return Skip("ip-word", {"word": table})
        route["table"] = int(table)
    return [Action("route", route)]


def _rule(rest: list[str], fam: int) -> list[Action] | Skip:
    got = _pairs(rest, False)
    if isinstance(got, Skip):
        return got
    _, o = got
    if o.get("from", "all") != "all" or "local" in o:
        return Skip("ip-word", {"word": "from"})
    table = o.get("table", o.get("lookup"))
    rule: dict = {}
    try:
        if "fwmark" in o:
            rule["fwmark"] = int(o["fwmark"].split("/")[0], 0)
        if "not" in o:
            rule["not"] = True
        rule["table"] = "main" if table == "main" else int(table)
        for k in ("priority", "pref", "preference"):
            if k in o:
                rule["priority"] = int(o[k])
        if "suppress_prefixlength" in o:
            rule["suppress_prefixlength"] = int(o["suppress_prefixlength"])
    except (TypeError, ValueError):
        return Skip("ip-word", {"word": str(table)})
    if fam == 6:
        rule["family"] = 6
    return [Action("rule", rule)]


def _address(rest: list[str], iface: str) -> list[Action] | Skip:
    got = _pairs(rest, True)
    if isinstance(got, Skip):
        return got
    cidr, o = got
    if o.get("dev") != iface or set(o) != {"dev"} or cidr is None:
        return Skip("other-iface", {"dev": o.get("dev", "?")})
    try:
        return [Action("address", str(ipaddress.ip_interface(cidr)))]
    except ValueError:
        return Skip("ip-word", {"word": cidr})
