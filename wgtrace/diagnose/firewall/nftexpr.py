"""nftables' JSON expressions (``nft -j list ruleset``) as nft itself prints them, and their values
in the neutral words of rules.py.

A rule's text is kept for evidence only, so it is printed the way ``nft -a list ruleset`` shows
it (``iifname "eth0" oifname "wg0" accept``), close enough for a person to find the rule; the
evaluator never reads it. What this module does not know is printed by its JSON key, never
guessed.
"""
from __future__ import annotations

import json

# meta keys nft prints without the word "meta"
BARE_META = {"iif", "iifname", "oif", "oifname", "iiftype", "oiftype", "ibriport", "obriport",
             "ibrname", "obrname", "iifgroup", "oifgroup"}
NAMES = {"iifname", "oifname", "iif", "oif", "ibrname", "obrname"}     # values printed in quotes
SIMPLE_VERDICTS = ("accept", "drop", "continue", "return", "queue", "notrack", "masquerade")


def value(v, quote: bool = False) -> str:
    """A right-hand value as nft prints it."""
    if isinstance(v, bool):
        return "exists" if v else "missing"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return f'"{v}"' if quote and not v.startswith("@") else v
    if isinstance(v, list):                       # flags: ct state established,related
        return ",".join(value(x, quote) for x in v)
    if isinstance(v, dict):
        (k, x), = v.items() if len(v) == 1 else ((None, v),)
        if k == "prefix":
            return f"{x['addr']}/{x['len']}"
        if k == "range":
            return f"{value(x[0], quote)}-{value(x[1], quote)}"
        if k == "set":
            items = x if isinstance(x, list) else [x]
            return "{ " + ", ".join(_element(e, quote) for e in items) + " }"
        if k == "concat":
            return " . ".join(value(e, quote) for e in x)
        if k == "elem":
            return value(x.get("val"), quote)
        if k in ("accept", "drop", "continue", "return"):
            return k
        if k in ("jump", "goto"):
            return f"{k} {x['target']}"
        return expression(v)
    return json.dumps(v)


def _element(e, quote: bool) -> str:
    if isinstance(e, list) and len(e) == 2:       # a map's key : value
        return f"{value(e[0], quote)} : {value(e[1])}"
    return value(e, quote)


def expression(e) -> str:
    """A left-hand expression: ``ip saddr``, ``meta l4proto``, ``ct state``, ``fib saddr . iif oif``."""
    if not isinstance(e, dict) or len(e) != 1:
        return value(e)
    (k, x), = e.items()
    if k == "meta":
        return x["key"] if x["key"] in BARE_META else f"meta {x['key']}"
    if k == "payload":
        if "protocol" in x:
            return f"{x['protocol']} {x['field']}"
        return f"@{x.get('base', '?')},{x.get('offset', '?')},{x.get('len', '?')}"
    if k == "ct":
        return " ".join(w for w in ("ct", x.get("dir", ""), x.get("key", "")) if w)
    if k == "fib":
        return f"fib {' . '.join(x.get('flags', []))} {x.get('result', '')}"
    if k == "concat":
        return " . ".join(expression(y) for y in x)
    if k in ("&", "|", "^", "<<", ">>"):
        return f"{expression(x[0])} {k} {value(x[1])}"
    if k in ("prefix", "range", "set", "elem"):
        return value(e)
    return k


def left_names(e) -> bool:
    """Is the value compared with this expression an interface name (printed in quotes)?"""
    return isinstance(e, dict) and "meta" in e and e["meta"].get("key") in NAMES


def statement(s: dict) -> str:
    """One statement of a rule: a match, a counter, a verdict, NAT, logging…"""
    (k, x), = s.items()
    if k == "match":
        left = x["left"]
        binop = isinstance(left, dict) and next(iter(left), "") in ("&", "|", "^", "<<", ">>")
        op = "" if x["op"] in ("==", "in") and not binop else f" {x['op']}"
        if isinstance(left, dict) and "fib" in left and isinstance(x["right"], bool):
            return f"{expression(left)}{op} {value(x['right'])}"
        right = x["right"]
        if isinstance(right, int) and not isinstance(right, bool) and expression(left) in ("meta mark", "ct mark"):
            return f"{expression(left)}{op} 0x{right:08x}"           # marks as nft prints them
        return f"{expression(left)}{op} {value(right, left_names(left))}"
    if k == "counter":
        # no numbers: the text names the rule, the same before and after the probe
        return "counter" if isinstance(x, dict) else f'counter name "{x}"'
    if k in SIMPLE_VERDICTS and not x:
        return k
    if k in ("jump", "goto"):
        return f"{k} {x['target']}"
    if k == "reject":
        if not x:
            return "reject"
        kind, why = x.get("type", ""), x.get("expr", "")
        if why == "port-unreachable" and kind in ("icmpx", "icmp", "icmpv6"):
            return "reject"                                        # the default, which nft leaves unsaid
        return f"reject with {kind}{' ' + why if why else ''}"
    if k in ("snat", "dnat", "masquerade", "redirect"):
        fam = f" {x['family']}" if x.get("family") else ""
        to = value(x["addr"]) if "addr" in x else ""
        if "port" in x:
            to += f":{value(x['port'])}"
        return f"{k}{fam}{' to ' + to if to else ''}"
    if k == "vmap":
        return f"{expression(x['key'])} vmap {value(x['data'])}"
    if k == "log":
        return "log" + "".join(f' {w} "{x[w]}"' if w == "prefix" else f" {w} {x[w]}" for w in (x or {}))
    if k == "limit":
        return f"limit rate {'over ' if x.get('inv') else ''}{x.get('rate')}/{x.get('per', 'second')}"
    if k == "xt":
        return f"xt {x.get('type', '')} {x.get('name', '')}"
    if k == "mangle":
        return f"{expression(x['key'])} set {value(x['value'])}"
    return k


def rule_text(rule: dict) -> str:
    """The rule as ``nft -a list ruleset`` prints it, with its handle."""
    words = [statement(s) for s in rule.get("expr", [])]
    if rule.get("comment"):
        words.append(f'comment "{rule["comment"]}"')
    return " ".join(words + [f"# handle {rule.get('handle', 0)}"])
