"""A student's progress and record, kept between runs (lesson resumes, reports read it).

Stored as JSON in $WGTRACE_STATE_DIR, else $XDG_STATE_HOME/wgtrace, else ~/.local/state/wgtrace:
one file per lesson (``lesson-<name>.json``) and one for the current exercise (``exercise.json``).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


def state_dir() -> Path:
    if os.environ.get("WGTRACE_STATE_DIR"):
        return Path(os.environ["WGTRACE_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "wgtrace"


@dataclass
class Record:
    kind: str                       # "lesson" | "exercise"
    name: str                       # lesson name, or "exercise"
    lab: str
    lang: str = "en"
    stage: int = 1                  # lesson: the stage being worked on
    started: float = field(default_factory=time.time)
    finished: float = 0.0
    passed: dict = field(default_factory=dict)    # stage name -> {"at", "seconds"}
    events: list = field(default_factory=list)    # {"t", "type", ...}
    faults: list = field(default_factory=list)    # exercise: injected fault names
    seed: int | None = None
    lab_file: str = ""              # the lab file the lab was built from

    @property
    def path(self) -> Path:
        return state_dir() / (f"lesson-{self.name}.json" if self.kind == "lesson" else "exercise.json")

    def log(self, type_: str, **data) -> None:
        self.events.append({"t": round(time.time(), 3), "type": type_, **data})
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False))
        tmp.replace(self.path)


def load_record(kind: str, name: str = "exercise") -> Record | None:
    path = state_dir() / (f"lesson-{name}.json" if kind == "lesson" else "exercise.json")
    try:
        return Record(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
