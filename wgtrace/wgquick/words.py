"""What the import says, as data: a key into the text catalogues and its parameters.

Reading and inferring produce ``Said`` records (a problem in a file, a note, a finding); they
become sentences only when shown, in the language asked for (``texts/<lang>.toml``, tables
``wgquick_error``, ``wgquick_note``, ``wgquick_finding``, ``wgquick_hook``, ``wgquick_lab``).
A record tied to a place in a file is shown ``FILE:LINE: sentence``, as compilers and the
lab-file loader show theirs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .keys import redact


@dataclass(frozen=True)
class Said:
    key: str                           # "wgquick_error.unknown-key"
    params: dict = field(default_factory=dict)
    file: str | None = None            # the file as the user named it
    line: int | None = None

    def text(self, lang: str = "en") -> str:
        from ..texts import say
        sentence = say(self.key, lang, **self.params)
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return redact(f"{where}: {sentence}" if self.file else sentence)


@dataclass(frozen=True)
class Joined:
    """Several sentences said as one line (a description)."""
    parts: tuple[Said, ...]
    sep: str = "; "

    def __init__(self, parts, sep: str = "; ") -> None:
        object.__setattr__(self, "parts", tuple(parts))
        object.__setattr__(self, "sep", sep)

    def text(self, lang: str = "en") -> str:
        return self.sep.join(p.text(lang) for p in self.parts)


def error(what: str, file: str, line: int | None = None, **params) -> Said:
    return Said(f"wgquick_error.{what}", params, file, line)


def note(what: str, file: str | None = None, line: int | None = None, **params) -> Said:
    return Said(f"wgquick_note.{what}", params, file, line)


def finding(what: str, file: str | None = None, line: int | None = None, **params) -> Said:
    return Said(f"wgquick_finding.{what}", params, file, line)


def lab_text(what: str, **params) -> Said:
    """Words that go into the lab file itself (descriptions, the header)."""
    return Said(f"wgquick_lab.{what}", params)


def reason(key: str) -> tuple[str, str]:
    """Why a hook command is not reproduced: a key put into words with the note's own params."""
    return ("@", f"wgquick_hook.{key}")


def shorten(text: str, limit: int = 90) -> str:
    """A command or line as it is quoted in a sentence: one line, bounded, keys taken out."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"
