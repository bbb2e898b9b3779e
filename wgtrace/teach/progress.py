"""A student's progress and record, kept between runs (lesson resumes, reports read it).

Stored as JSON in $WGTRACE_STATE_DIR, else $XDG_STATE_HOME/wgtrace, else ~/.local/state/wgtrace:
one file per lesson and lab (``lesson-<name>-<lab>.json``) and one for the current exercise
(``exercise.json``).
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
    probes: list = field(default_factory=list)    # exercise: the probes that grade it ({src, dst, tcp|udp})
    seed: int | None = None
    lab_file: str = ""              # the lab file the lab was built from
    lab_started: float = 0.0        # the build this record belongs to (LabState.started)

    @property
    def path(self) -> Path:
        return record_path(self.kind, self.name, self.lab)

    def log(self, type_: str, **data) -> None:
        self.events.append({"t": round(time.time(), 3), "type": type_, **data})
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False))
        tmp.replace(self.path)


def record_path(kind: str, name: str, lab: str) -> Path:
    """lesson-<lesson>-<lab>.json (a lesson run under another lab name keeps its own progress),
    exercise.json."""
    return state_dir() / (f"lesson-{name}-{lab}.json" if kind == "lesson" else "exercise.json")


def load_record(kind: str, name: str = "exercise", lab: str = "seed") -> Record | None:
    path = record_path(kind, name, lab)
    try:
        return Record(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
