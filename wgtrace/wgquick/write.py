"""An import as a lab file a person can read: the header says where it came from, that no key is
in it, what was inferred, what does not fit, and what was not reproduced; then the lab.

The TOML itself is written by the lab-file writer discovery uses (hosts/tomlout.py).
"""
from __future__ import annotations

from ..model.tomlout import lab_toml
from .words import Joined, Said, lab_text, shorten

INFERRED = {"wgquick_note.public-inferred", "wgquick_note.public-from-endpoint", "wgquick_note.name-resolved", "wgquick_note.forwarding-inferred",
            "wgquick_finding.nat-inferred"}


def render(obj, lang: str = "en"):
    """The lab data with every piece of words put into ``lang``."""
    if isinstance(obj, (Said, Joined)):
        return obj.text(lang)
    if isinstance(obj, dict):
        # a lab file's description is one line of at most 300 characters
        return {k: shorten(render(v, lang), 300) if k == "description" else render(v, lang) for k, v in obj.items()}
    if isinstance(obj, list):
        return [render(v, lang) for v in obj]
    return obj


def header(files: list[str], notes: list[Said], findings: list[Said], lang: str = "en") -> list[str]:
    lines = [lab_text("header", count=len(files), files=", ".join(files)).text(lang),
             lab_text("header-keys").text(lang), "",
             lab_text("header-inferred").text(lang),
             "  " + lab_text("header-underlay").text(lang)]
    lines += ["  " + s.text(lang) for s in notes + findings if s.key in INFERRED]
    rest = [s for s in findings if s.key not in INFERRED]
    if rest:
        lines += ["", lab_text("header-findings").text(lang)] + ["  " + s.text(lang) for s in rest]
    rest = [s for s in notes if s.key not in INFERRED]
    if rest:
        lines += ["", lab_text("header-notes").text(lang)] + ["  " + s.text(lang) for s in rest]
    return lines


def lab_file_text(lab: dict, head: list[str]) -> str:
    return lab_toml(lab, head)
