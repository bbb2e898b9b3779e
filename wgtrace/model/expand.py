"""Lab-file parameters and repetition: one lab file for a hub with 3 spokes or with 200.

A lab file may declare parameters and repeat tables with them:

    [params]
    spokes = { default = 3, min = 1, max = 250, help = "how many spokes" }

    [nodes."spoke{i}"]                        # a node table repeated for i = 1..spokes
    each = { i = "1..spokes" }
    addresses = { wan = "100.64.1.{i}/16" }

    peers = [{ peer = "spoke{i}", allowed_ips = ["10.99.1.{i}/32"], each = { i = "1..spokes" } }]

``{expr}`` in any string (keys too) is an integer expression of the parameters and the loop
variables in scope: names, integers, + - * // % and parentheses; nothing else is evaluated.
Braces with a space inside the opening one (``{ 22, 80 }``, nft's sets and chain specifications)
are not expressions and stay as they are.
Expansion runs before parsing, so every later check sees plain data and reports plain keys.
"""
from __future__ import annotations

import ast
import re
from typing import Any

PLACE = re.compile(r"\{(|[^{}\s][^{}]*)\}")
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_REPEAT = 10000            # one each-range; the lab's size is bounded again after expansion


class ExpandError(Exception):
    def __init__(self, key: str, what: str) -> None:
        super().__init__(what)
        self.key, self.what = key, what


def _eval(expr: str, scope: dict[str, int], key: str) -> int:
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise ExpandError(key, f"{{{expr}}} is not an expression") from None

    def ev(n) -> int:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and type(n.value) is int:
            return n.value
        if isinstance(n, ast.Name):
            if n.id not in scope:
                raise ExpandError(key, f"{{{expr}}}: unknown name {n.id!r} (parameters and loop variables: "
                                       f"{', '.join(sorted(scope)) or 'none'})")
            return scope[n.id]
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.BinOp) and type(n.op) in OPS:
            a, b = ev(n.left), ev(n.right)
            if type(n.op) in (ast.FloorDiv, ast.Mod) and b == 0:
                raise ExpandError(key, f"{{{expr}}}: division by zero")
            return OPS[type(n.op)](a, b)
        raise ExpandError(key, f"{{{expr}}}: only integers, names, + - * // % and parentheses are allowed")
    return ev(tree)


OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
       ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}


def _subst(text: str, scope: dict[str, int], key: str) -> str:
    return PLACE.sub(lambda m: str(_eval(m[1], scope, key)), text)


def _loops(each: Any, scope: dict[str, int], key: str) -> list[dict[str, int]]:
    """The scopes an ``each`` table stands for: every combination of its ranges, in order."""
    if not isinstance(each, dict) or not each:
        raise ExpandError(f"{key}.each", 'must be a table like { i = "1..spokes" }')
    out = [dict(scope)]
    for var, rng in each.items():
        if not NAME.match(var):
            raise ExpandError(f"{key}.each.{var}", "a loop variable is lower-case letters, digits and _")
        if not isinstance(rng, str) or ".." not in rng:
            raise ExpandError(f"{key}.each.{var}", 'a range is "FIRST..LAST", like "1..spokes"')
        lo_t, hi_t = rng.split("..", 1)
        nxt = []
        for sc in out:
            lo, hi = _eval(lo_t, sc, f"{key}.each.{var}"), _eval(hi_t, sc, f"{key}.each.{var}")
            if hi - lo + 1 > MAX_REPEAT:
                raise ExpandError(f"{key}.each.{var}", f"{rng} repeats {hi - lo + 1} times (at most {MAX_REPEAT})")
            nxt += [{**sc, var: v} for v in range(lo, hi + 1)]
        out = nxt
    return out


def _walk(value: Any, scope: dict[str, int], key: str) -> Any:
    if isinstance(value, str):
        return _subst(value, scope, key)
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            k = f"{key}[{i}]"
            if isinstance(item, dict) and "each" in item:
                body = {a: b for a, b in item.items() if a != "each"}
                out += [_walk(body, sc, k) for sc in _loops(item["each"], scope, k)]
            else:
                out.append(_walk(item, scope, k))
        return out
    if isinstance(value, dict):
        out: dict = {}
        for name, item in value.items():
            k = f"{key}.{name}" if key else name
            if isinstance(item, dict) and "each" in item:
                body = {a: b for a, b in item.items() if a != "each"}
                for sc in _loops(item["each"], scope, k):
                    new = _subst(name, sc, k)
                    if new in out:
                        raise ExpandError(k, f"repeats into {new!r}, which is there already")
                    out[new] = _walk(body, sc, f"{key}.{new}" if key else new)
            else:
                new = _subst(name, scope, k)
                if new in out:
                    raise ExpandError(k, f"becomes {new!r}, which is there already")
                out[new] = _walk(item, scope, k)
        return out
    return value


def declared_params(data: dict) -> dict[str, dict]:
    """name -> {default, min, max, help}, as the lab file declares them (checked)."""
    raw = data.get("params") or {}
    if not isinstance(raw, dict):
        raise ExpandError("params", "must be a table of name = default or name = { default, min, max, help }")
    out = {}
    for name, spec in raw.items():
        if not NAME.match(name):
            raise ExpandError(f"params.{name}", "a parameter name is lower-case letters, digits and _")
        spec = {"default": spec} if not isinstance(spec, dict) else spec
        unknown = set(spec) - {"default", "min", "max", "help"}
        if unknown:
            raise ExpandError(f"params.{name}.{sorted(unknown)[0]}", "unknown key (expected default, min, max, help)")
        if not all(type(spec.get(k, 0)) is int for k in ("default", "min", "max")) or "default" not in spec:
            raise ExpandError(f"params.{name}", "needs an integer default (and integer min, max if given)")
        out[name] = spec
    return out


def expand(data: dict, values: dict[str, str] | None = None) -> tuple[dict, dict[str, int]]:
    """The lab file's data with parameters set (defaults, overridden by ``values``) and every
    ``each`` expanded; and the parameters used."""
    params = declared_params(data)
    scope: dict[str, int] = {n: s["default"] for n, s in params.items()}
    for name, text in (values or {}).items():
        if name not in params:
            known = ", ".join(sorted(params)) or "none"
            raise ExpandError(f"params.{name}", f"--set {name}: this lab has no such parameter (parameters: {known})")
        try:
            scope[name] = int(text)
        except ValueError:
            raise ExpandError(f"params.{name}", f"--set {name}={text}: not an integer") from None
    for name, v in scope.items():
        lo, hi = params[name].get("min"), params[name].get("max")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ExpandError(f"params.{name}", f"{v} is outside {lo}..{hi}")
    body = {k: v for k, v in data.items() if k != "params"}
    return _walk(body, scope, ""), scope
