"""The nftables provider: ``nft -j list ruleset`` read into neutral rules, and the nft commands
that take a rule out (``delete rule … handle N``) or let a packet through (an accept inserted
before the rule that dropped it, or added before the chain's policy).

Every table of the IP families is read (ip, ip6, inet; netdev's ingress and egress chains
filter IP too), bridge tables as hooks of their own (they see bridged frames, not routed
packets; arp tables are not IP and not read). A base chain is a policy record with its hook,
and its priority as position (the order the kernel runs the chains of one hook in); a chain
only jumped to gets the hook of the first base chain that jumps there. A rule has a counter
only with a ``counter`` statement (a policy never has one): rules.Firewall.judged finds the
drop of a rule without one by matching the probe's packet against the ruleset.

iptables-nft writes its tables into nftables too, so they show up here as well: the chains
iptables-nft-save lists are left to the iptables provider (``iptables_chains``), never counted
twice.
"""
from __future__ import annotations

import json
import re

from .nftexpr import rule_text, statement, value
from .rules import FwRule

READS = ("nft", "-j", "list", "ruleset")
FAMILIES = {"ip": 4, "ip6": 6, "inet": 0, "bridge": 0, "netdev": 0}
VERDICTS = {"accept": "accept", "drop": "drop", "reject": "reject", "jump": "jump", "goto": "goto",
            "return": "return", "masquerade": "masquerade", "snat": "snat", "dnat": "dnat",
            "redirect": "dnat", "queue": "queue"}
PORTS = ("tcp", "udp", "sctp", "dccp", "udplite")
PROTO_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp", "132": "sctp"}
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")      # names nft reads without quotes


def iptables_chains(saves: dict[int, str]) -> set[tuple[str, str, str]]:
    """(nft family, table, chain) of every chain an nf_tables-backed iptables-save listed: those
    are iptables-nft's, read by the iptables provider (iptables-legacy's never show in nft)."""
    out = set()
    for fam, text in saves.items():
        if "(nf_tables)" not in text.split("\n", 1)[0] and "(nf_tables)" not in text[:300]:
            continue
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:].strip()
            elif line.startswith(":") and table:
                out.add(("ip" if fam == 4 else "ip6", table, line[1:].split()[0]))
    return out


def parse(text: str, skip: set[tuple[str, str, str]] = frozenset()) -> dict[FwRule, int]:
    """Every rule and base-chain policy of the ruleset, with its packet count (0 without a counter)."""
    try:
        items = json.loads(text).get("nftables", []) if text and text.strip() else []
    except (ValueError, AttributeError):
        return {}
    sets, counters, chains, rules = {}, {}, {}, []
    for it in items:
        kind, d = next(iter(it.items())) if isinstance(it, dict) and it else ("", None)
        if not isinstance(d, dict) or d.get("family") not in FAMILIES:
            continue
        key = (d["family"], d.get("table", d.get("name")), d.get("name") if kind != "rule" else d.get("chain"))
        if kind in ("set", "map"):
            sets[key] = d.get("elem", [])
        elif kind == "counter":
            counters[key] = d.get("packets", 0)
        elif kind == "chain" and key not in skip:
            chains[key] = d
        elif kind == "rule":
            rules.append(d)
    rules = [r for r in rules if (r.get("family"), r.get("table"), r.get("chain")) in chains
             and isinstance(r.get("expr", []), list)]
    hooks = _hooks(chains, rules)
    out: dict[FwRule, int] = {}
    for key, c in chains.items():
        if "hook" in c and hooks.get(key):
            fam, table, name = key
            # as nft prints the chain's head: its type tells a nat chain (where masquerade goes)
            text = f"type {c.get('type', 'filter')} hook {c['hook']} priority {c.get('prio', 0)}; " \
                   f"policy {c.get('policy', 'accept')}"
            out[FwRule("nft", FAMILIES[fam], table, name, text, c.get("policy", "accept"), hooks[key],
                       policy=True, counted=False, nft_family=fam, position=int(c.get("prio", 0)))] = 0
    positions: dict[tuple, int] = {}
    for r in rules:
        key = (r["family"], r["table"], r["chain"])
        try:
            got = _rules(r, hooks.get(key, ""), sets, counters, chains[key])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            # a statement of a shape this reader does not know: the rule is kept, never judged
            got = [({"backend": "nft", "family": FAMILIES[key[0]], "table": key[1], "chain": key[2],
                     "text": f"# handle {r.get('handle', 0)}", "verdict": "", "hook": hooks.get(key, ""),
                     "handle": int(r.get("handle", 0) or 0), "nft_family": key[0], "counted": False,
                     "matches": (("other", "unread"),)}, 0)]
        for rule, n in got:
            positions[key] = positions.get(key, 0) + 1
            out[FwRule(**{**rule, "position": positions[key]})] = n
    return out


def _hook(c: dict) -> str:
    """A base chain's hook as rules.py names them: bridge hooks apart, netdev's only where the
    JSON names its device (nft 1.0.6 leaves it out: then it is not placed on any hook)."""
    hook, fam = c.get("hook", ""), c.get("family")
    if fam == "bridge":
        return f"bridge-{hook}"
    if hook in ("ingress", "egress") and not c.get("dev"):
        return ""
    return hook


def _targets(r: dict) -> list[str]:
    out = []
    for s in (x for x in r.get("expr", []) if isinstance(x, dict)):
        for k in ("jump", "goto"):
            if isinstance(s.get(k), dict) and "target" in s[k]:
                out.append(s[k]["target"])
        if "vmap" in s and isinstance(s["vmap"], dict) and isinstance(s["vmap"].get("data"), dict):
            for e in s["vmap"]["data"].get("set", []):
                if isinstance(e, list) and len(e) == 2 and isinstance(e[1], dict):
                    out += [v["target"] for k, v in e[1].items() if k in ("jump", "goto")]
    return out


def _hooks(chains: dict, rules: list) -> dict[tuple, str]:
    """The hook of every chain: a base chain's own, a chain jumped to the first hook that reaches it."""
    out = {k: _hook(c) for k, c in chains.items() if "hook" in c}
    jumps = [((r["family"], r["table"], r["chain"]), t) for r in rules for t in _targets(r)]
    for _ in range(16):
        grew = False
        for src, target in jumps:
            dst = (src[0], src[1], target)
            if out.get(src) and dst in chains and dst not in out:
                out[dst], grew = out[src], True
        if not grew:
            break
    return out


def _rules(r: dict, hook: str, sets: dict, counters: dict, chain: dict) -> list[tuple[dict, int]]:
    """One rule of the ruleset as neutral rule fields (a verdict map: one per element)."""
    fam, table = r["family"], r["table"]
    base = {"backend": "nft", "family": FAMILIES[fam], "table": table, "chain": r["chain"],
            "text": rule_text(r), "hook": hook, "handle": int(r.get("handle", 0)), "nft_family": fam}
    matches: list[tuple[str, str]] = []
    if chain.get("dev") and chain.get("hook") in ("ingress", "egress"):
        dev = chain["dev"] if isinstance(chain["dev"], str) else ",".join(chain["dev"])
        matches.append(("iif" if chain["hook"] == "ingress" else "oif", dev))
    verdict, target, counted, n, vmap = "", "", False, 0, None
    for s in r.get("expr", []):
        (k, x), = s.items()
        if k == "match":
            matches += _match(x, fam, table, sets)
        elif k == "counter":
            counted = True
            n = x.get("packets", 0) if isinstance(x, dict) else counters.get((fam, table, x), 0)
        elif k in VERDICTS:
            verdict = VERDICTS[k]
            target = x["target"] if k in ("jump", "goto") else ""
        elif k == "vmap":
            vmap = x
        elif k in ("limit", "quota", "xt"):
            matches.append(("other", k))          # matches only sometimes: not judged
    if vmap is None:
        return [({**base, "verdict": verdict, "target": target, "counted": counted,
                  "matches": tuple(matches)}, n)]
    key = _neutral_left(vmap["key"])
    data = vmap["data"]
    elems = sets.get((fam, table, data[1:]), []) if isinstance(data, str) else data.get("set", [])
    out = []
    for e in elems:                              # a counter before a map counts every branch: none is counted
        if not (isinstance(e, list) and len(e) == 2 and isinstance(e[1], dict)):
            continue
        (vk, vx), = e[1].items()
        v = _neutral(e[0], fam, table, sets)
        m = matches + (key[0] + [(key[1], _normal(key[1], v))] if key and v is not None else [("other", "vmap")])
        out.append(({**base, "verdict": VERDICTS.get(vk, ""), "target": vx["target"] if vk in ("jump", "goto") else "",
                     "counted": False, "matches": tuple(m)}, 0))
    return out


def _neutral(v, fam: str, table: str, sets: dict) -> str | None:
    """A right-hand value in neutral words: ``10.0.0.0/8``, ``{22,80}``, ``8000-8080``; a named set
    by its elements. None: a value the evaluator cannot judge (concatenations, maps)."""
    if isinstance(v, str) and v.startswith("@"):
        elems = sets.get((fam, table, v[1:]))
        if elems is None:
            return None
        items = [_neutral(e, fam, table, sets) for e in elems]
        return None if None in items else "{" + ",".join(items) + "}"
    if isinstance(v, dict):
        k = next(iter(v))
        if k == "set":
            items = [_neutral(e, fam, table, sets) for e in v["set"]]
            return None if None in items else "{" + ",".join(items) + "}"
        if k == "elem":
            return _neutral(v["elem"].get("val"), fam, table, sets)
        if k in ("prefix", "range"):
            return value(v).replace(" ", "")
        return None
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        return str(v)
    return None


def _neutral_left(e) -> tuple[list[tuple[str, str]], str] | None:
    """(the matches implied, the neutral key) of a left-hand expression, or None."""
    if not isinstance(e, dict) or len(e) != 1:
        return None
    (k, x), = e.items()
    if k == "meta":
        return {"iif": ([], "iif"), "iifname": ([], "iif"), "oif": ([], "oif"), "oifname": ([], "oif"),
                "l4proto": ([], "proto"), "nfproto": ([], "family")}.get(x.get("key"))
    if k == "payload":
        proto, field = x.get("protocol"), x.get("field")
        if proto in ("ip", "ip6"):
            fam = [("family", "4" if proto == "ip" else "6")]
            return {"saddr": (fam, "src"), "daddr": (fam, "dst"), "protocol": (fam, "proto"),
                    "nexthdr": (fam, "proto")}.get(field)
        if field in ("sport", "dport") and proto in PORTS + ("th",):
            return [("proto", "{" + ",".join(PORTS) + "}" if proto == "th" else proto)], field
        return None
    if k == "ct" and x.get("key") == "state" and not x.get("dir"):
        return [], "ctstate"
    return None


def _match(m: dict, fam: str, table: str, sets: dict) -> list[tuple[str, str]]:
    """One match in neutral words; what is not understood is ("other", its text)."""
    op, left, right = m.get("op"), m.get("left"), m.get("right")
    other = [("other", statement({"match": m}))]
    if op not in ("==", "!=", "in"):
        return other
    neg = "!" if op == "!=" else ""
    if isinstance(left, dict) and "fib" in left:
        # reverse-path filtering: "fib saddr . iif oif missing" matches what fails the strict test
        # (the source is not routed back by the interface it came in on), without iif the loose one
        flags = set(left["fib"].get("flags", []))
        if left["fib"].get("result") == "oif" and "saddr" in flags and isinstance(right, bool):
            fails = right is False if op != "!=" else right is True
            return [("rpfilter", ("!" if fails else "") + ("strict" if "iif" in flags else "loose"))]
        return other
    got = _neutral_left(left)
    v = _neutral(right, fam, table, sets)
    if got is None or v is None:
        implied = got[0] if got else []
        return implied + other
    implied, key = got
    return implied + [(key, neg + _normal(key, v))]


def _normal(key: str, v: str) -> str:
    """Values as the evaluator compares them: states in capitals, families as 4 or 6, protocols
    by name."""
    if key == "ctstate":
        return v.upper().replace("{", "").replace("}", "")
    if key == "family":
        return ",".join({"ipv4": "4", "ipv6": "6"}.get(f, f) for f in v.strip("{}").split(","))
    if key == "proto":
        return ",".join(PROTO_NUMBERS.get(p, p) for p in v.strip("{}").split(","))
    return v


# --- the commands a fix needs ---------------------------------------------------------------

def _name(n: str) -> str:
    return n if NAME_RE.match(n) else f'"{n}"'


def where(rule: FwRule) -> tuple[str, str, str]:
    return rule.nft_family, rule.table, rule.chain


def undo(rule: FwRule) -> tuple[str, ...]:
    """Delete the rule by its handle (a policy: set it to accept)."""
    if rule.policy:
        return ("nft", "chain", *where(rule), "{ policy accept ; }")
    return ("nft", "delete", "rule", *where(rule), "handle", str(rule.handle))


def loosen(rule: FwRule) -> list[tuple[str, ...]]:
    """The same reverse-path rule in loose mode: its fib lookup without the input interface (a
    source routed back by any interface passes), replaced in place."""
    text = rule.text.rsplit(" # handle ", 1)[0].replace(" . iif oif", " oif")
    return [("nft", "replace", "rule", *where(rule), "handle", str(rule.handle), text)]


def accept(fw, like: FwRule, family: int, *, first: bool = False, iif: str | None = None,
           oif: str | None = None, proto: str | None = None, dport: int | None = None,
           established: bool = False) -> tuple[str, ...]:
    """An accept for exactly this traffic, in the chain of ``like`` (the rule or policy that
    dropped it): inserted right before that rule, or added at the end of the chain (before its
    policy; ``first``: at its top)."""
    m: list[str] = []
    if established:
        m += ["ct", "state", "established,related"]
    if iif:
        m += ["iifname", _name(iif)]
    if oif:
        m += ["oifname", _name(oif)]
    if proto == "icmp" and family == 6:
        proto = "ipv6-icmp"
    if proto and dport:
        m += [proto, "dport", str(dport)]
    elif proto:
        m += ["meta", "l4proto", proto]
    if like.policy:
        return ("nft", "insert" if first else "add", "rule", *where(like), *m, "accept")
    return ("nft", "insert", "rule", *where(like), "position", str(like.handle), *m, "accept")


def nat_chain(fw, family: int) -> FwRule | None:
    """The policy of a nat chain on postrouting for ``family`` (where masquerade goes), if any."""
    return next((r for r in fw.rules if r.backend == "nft" and r.policy and r.hook == "postrouting"
                 and r.text.startswith("type nat ") and r.for_family(family)), None)


def masquerade(fw, native: FwRule, family: int, src: str, oif: str) -> tuple[str, ...]:
    """Source NAT for ``src`` out of ``oif``, in the chain where the node already translates
    (``native``: a rule that translates, or a nat chain's policy)."""
    return ("nft", "add", "rule", *where(native), "ip6" if family == 6 else "ip", "saddr", src,
            "oifname", _name(oif), "masquerade")
