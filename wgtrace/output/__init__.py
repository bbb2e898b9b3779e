"""Every command's result leaves through ``emit(result, fmt)``: one output path, formats as modules.

A format is a module of this package with an ``emit(result, dest, lang, console)`` function,
loaded by name only when used: ``text`` (the terminal views), ``json`` (docs/json.md),
``pcapng`` (a trace's frames, one interface per node:iface). Nothing here touches a node.
"""
from __future__ import annotations

import importlib

FORMATS = {"text": "text", "json": "jsonout", "pcapng": "pcapng"}


def emit(result, fmt: str = "text", dest: str | None = None, lang: str = "en", console=None):
    """Render ``result`` in format ``fmt``: to ``dest`` (a file) or the terminal (``console``)."""
    mod = importlib.import_module(f"{__name__}.{FORMATS[fmt]}")
    return mod.emit(result, dest, lang, console)
