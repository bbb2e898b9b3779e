"""Terminal output: the rich view for each kind of result (views live in *_view.py)."""
from __future__ import annotations

import importlib

# result class name -> (module, function)
VIEWS = {
    "TraceResult": ("trace_view", "trace_view"),
    "Diagnosis": ("verdict_view", "verdict_view"),
    "FixRun": ("verdict_view", "fix_run_view"),
    "FixStep": ("verdict_view", "fix_step_view"),
    "LabStatus": ("status_view", "status_view"),
    "CheckMatrix": ("check_view", "check_view"),
    "Grade": ("check_view", "grade_view"),
}


def render(result, lang: str = "en"):
    if type(result).__name__ == "Families":
        return families_view(result, lang)
    mod, fn = VIEWS[type(result).__name__]
    return getattr(importlib.import_module(f"{__package__}.{mod}"), fn)(result, lang)


def families_view(fam, lang: str, view=None):
    """Each family's result in turn, under its name when there are several (one: as it is)."""
    from rich.console import Group
    from rich.text import Text
    view = view or (lambda r: render(r, lang))
    if len(fam.results) == 1:
        return view(fam.results[0])
    parts = []
    for i, (f, r) in enumerate(fam.pairs()):
        parts += ([Text("")] if i else []) + [Text(f"IPv{f}", "bold underline"), view(r)]
    return Group(*parts)


def emit(result, dest, lang, console) -> None:
    if console is None:
        from rich.console import Console
        console = Console()
    console.print(render(result, lang), highlight=False)
