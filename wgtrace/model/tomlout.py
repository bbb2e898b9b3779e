"""Write lab-file data as TOML a person can read: tables per node, one route or rule a line.

Python reads TOML but does not write it; the lab file's shape is small and known, so this writes
it directly. Every string goes out as a TOML basic string (JSON's escaping is valid TOML), every
key bare when it can be, quoted otherwise; comments are one printable line each (an item of a
list may carry one in its ``#`` entry: written beside it, never as data).
"""
from __future__ import annotations

import json
import re

BARE = re.compile(r"^[A-Za-z0-9_-]+$")
LONG = ("routes", "rules", "sysctl", "iptables", "ip6tables", "peers", "checks")      # lists written one item a line


def key(k: str) -> str:
    return k if BARE.match(k) else json.dumps(k, ensure_ascii=False)


def value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }" if v else "{}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _entries(d: dict, skip: tuple = ()) -> list[str]:
    out = []
    for k, v in d.items():
        if k in skip:
            continue
        if k in LONG and isinstance(v, list) and v:
            out.append(f"{key(k)} = [")
            out += [_item(x) for x in v]
            out.append("]")
        else:
            out.append(f"{key(k)} = {value(v)}")
    return out


def _item(x) -> str:
    """One item of a long list; a table's ``#`` entry is written as a comment beside it."""
    if isinstance(x, dict) and "#" in x:
        return f"  {value({k: v for k, v in x.items() if k != '#'})},  {comment(str(x['#']))}"
    return f"  {value(x)},"


def comment(text: str) -> str:
    return "# " + "".join(c if c.isprintable() else "?" for c in text)


def lab_toml(data: dict, header: list[str] = ()) -> str:
    lines = [comment(h) if h else "#" for h in header]
    if lines:
        lines.append("")
    lines += _entries({k: v for k, v in data.items() if k not in ("stages", "nodes", "links")})
    for st in data.get("stages", []):
        lines += ["", "[[stages]]"] + _entries(st)
    for name, node in data.get("nodes", {}).items():
        lines += ["", f"[nodes.{key(name)}]"] + _entries(node, skip=("wireguard",))
        for wname, w in node.get("wireguard", {}).items():
            lines += ["", f"[nodes.{key(name)}.wireguard.{key(wname)}]"] + _entries(w)
    for link in data.get("links", []):
        lines += ["", "[[links]]"] + _entries(link)
    return "\n".join(lines) + "\n"
