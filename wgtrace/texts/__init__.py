"""Every word wgtrace says to a person, one catalogue per language: texts/<lang>.toml.

A catalogue is TOML tables of templates (``[cause]``, ``[story]``, ``[evidence]``, ``[view]``,
``[walk]``, ``[guided]``…) with ``{name}`` placeholders. Results carry (key, params), never
finished sentences, and are put into words only when shown, in the language asked for.
A new language is one new file; a key it lacks falls back to English.
"""
from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANGS = tuple(sorted((p.stem for p in HERE.glob("*.toml")), key=lambda l: (l != "en", l)))


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict:
    return tomllib.loads((HERE / f"{lang}.toml").read_text(encoding="utf-8"))


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def template(key: str, lang: str = "en") -> str | None:
    """The template at a dotted key ("cause.mtu"), in ``lang`` or else English."""
    for lg in (lang, "en"):
        node = catalogue(lg) if lg in LANGS else {}
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, str):
            return node
    return None


def say(key: str, lang: str = "en", /, **params) -> str:
    """The sentence for ``key`` in ``lang``; params fill its placeholders (missing ones: "?").
    A param given as ("@", key) is itself a key to put into words first, with the same params
    (a phase, a reason); one with a ``text(lang)`` method (a trace's story) is asked for its text."""
    text = template(key, lang)
    if text is None:
        return key
    plain = {k: v for k, v in params.items() if v is not None and not _is_ref(v) and not hasattr(v, "text")}
    vals = dict(plain)
    for k, v in params.items():
        if _is_ref(v):
            vals[k] = say(v[1], lang, **plain)
        elif hasattr(v, "text") and callable(v.text):
            vals[k] = v.text(lang)
    return text.format_map(_Blank(vals))


def _is_ref(v) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and v[0] == "@"


def words(section: str, lang: str = "en") -> dict[str, str]:
    """A whole table (headings of a view), English filling the gaps."""
    out = dict(catalogue("en").get(section, {}))
    if lang in LANGS and lang != "en":
        out.update(catalogue(lang).get(section, {}))
    return out


def explain(cause: str, params: dict, lang: str = "en") -> str:
    """The cause's explanation; a verdict whose params name a ``variant`` has its own words
    (``[cause_variant]``, ``CAUSE-VARIANT``) for the same cause."""
    if params.get("variant"):
        return say(f"cause_variant.{cause}-{params['variant']}", lang, **params)
    return say(f"cause.{cause}", lang, **params)


def check_lang(lang: str) -> str:
    from ..errors import UsageError
    if lang not in LANGS:
        raise UsageError(f"--lang {lang!r}: choose one of {', '.join(LANGS)}.")
    return lang
