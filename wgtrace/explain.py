"""Turn a verdict into the words a teacher would use (texts/causes.toml, English and Chinese)."""
from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

TEXTS = Path(__file__).resolve().parent / "texts" / "causes.toml"


@lru_cache(maxsize=1)
def texts() -> dict:
    return tomllib.loads(TEXTS.read_text(encoding="utf-8"))


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def explain(cause: str, params: dict, lang: str = "en") -> str:
    table = texts().get(lang) or texts()["en"]
    return table.get(cause, cause).format_map(_Blank({k: v for k, v in params.items() if v is not None}))
