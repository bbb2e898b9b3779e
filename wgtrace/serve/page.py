"""The page: one HTML template with the texts and the current state inlined, a script, a style.

The files live in ``static/`` beside this module (package data); the script is ours, served from
here: no build step, no CDN, nothing fetched from outside. Every word comes from texts/<lang>.toml
(the ``[serve]`` table); the script gets them as JSON and fills their ``{name}`` placeholders.
"""
from __future__ import annotations

import json
from functools import lru_cache
from html import escape
from pathlib import Path

from ..texts import say, words

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Only our own script and style; the pictures are inline SVG; nothing else may load or run.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def sayer(lang: str):
    return lambda key, **params: say(f"serve.{key}", lang, **params)


def inline_json(data) -> str:
    """JSON safe inside <script type="application/json">: no "</script>", no "<!--"."""
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


@lru_cache(maxsize=None)
def _template() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


def render(snapshot: dict, lang: str, probes: bool, why_not: str) -> str:
    w = words("serve", lang)
    state = {**snapshot, "probes": probes, "why_not": why_not}
    return (_template().replace("{{lang}}", escape(lang)).replace("{{title}}", escape(w["title"]))
            .replace("{{loading}}", escape(w["loading"]))
            .replace("{{texts}}", inline_json(w)).replace("{{state}}", inline_json(state)))


def static(name: str) -> tuple[bytes, str] | None:
    """A file of the page (app.js, app.css), or None: only names listed here are served."""
    path = STATIC / name
    if "/" in name or path.suffix not in TYPES or not path.is_file():
        return None
    return path.read_bytes(), TYPES[path.suffix]


def error_page(message: str, lang: str) -> str:
    w = words("serve", lang)
    return (f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8"><title>{escape(w["title"])}'
            f'</title><link rel="stylesheet" href="/static/app.css"></head><body><p class="failure">{escape(message)}'
            f'</p><p><a href="/">{escape(w["back"])}</a></p></body></html>')
