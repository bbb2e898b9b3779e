"""JSON output (docs/json.md): each result's ``to_json(lang)``, UTF-8, never ASCII-escaped."""
from __future__ import annotations

import json
import sys


def dumps(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def emit(result, dest, lang, console) -> None:
    text = dumps(result.to_json(lang) if hasattr(result, "to_json") else result)
    if dest:
        with open(dest, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
