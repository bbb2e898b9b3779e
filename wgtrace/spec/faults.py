"""The fault catalogue: named ways to break a finished lab, each with the verdict it must get.

Faults are data (labs/<lab>.faults.toml): commands for named nodes, and the expected
cause, stop node and direction. lab/inject.py runs them on a lab.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabFileError


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    inject: tuple[tuple[str, str], ...]          # (node, command)
    cause: str
    node: str
    direction: str
    probe: dict = field(default_factory=dict)    # e.g. {"size": 1400}


def faults_file(lab_file: str) -> Path:
    p = Path(lab_file)
    return p.with_name(p.stem + ".faults.toml")


def load_faults(lab_file: str) -> list[Fault]:
    path = faults_file(lab_file)
    if not path.is_file():
        raise LabFileError(f"this lab has no fault catalogue ({path.name} is missing).")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out = []
    for i, f in enumerate(data.get("fault", [])):
        try:
            e = f["expect"]
            out.append(Fault(f["name"], f.get("summary", ""),
                             tuple((x["node"], x["command"]) for x in f["inject"]),
                             e["cause"], e["node"], e.get("direction", "request"), f.get("probe", {})))
        except (KeyError, TypeError) as err:
            raise LabFileError(f"{path}: fault[{i}]: missing {err}") from None
    return out


def find_fault(faults: list[Fault], name: str) -> Fault:
    for f in faults:
        if f.name == name:
            return f
    raise LabFileError(f"no fault {name!r}; 'wgtrace break --list' shows them.")


def pick(faults: list[Fault], k: int, seed: int) -> list[Fault]:
    """K faults for an exercise, the same for the same seed. Faults that need a special probe
    (--size) are left out, and so is a second fault on the same node and subject (they would
    overwrite each other: two changes to home's one peer)."""
    import random
    rng = random.Random(seed)
    pool = [f for f in faults if not f.probe]
    rng.shuffle(pool)
    chosen, subjects = [], set()
    for f in pool:
        subj = {(node, cmd.split()[0] + (" " + cmd.split()[1] if cmd.startswith("wg") else "")) for node, cmd in f.inject}
        if subjects & subj:
            continue
        chosen.append(f)
        subjects |= subj
        if len(chosen) == k:
            break
    return chosen


def random_key() -> str:
    import base64
    import os
    return base64.b64encode(os.urandom(32)).decode()


def render_command(cmd: str, keys: dict[str, str]) -> str:
    """The fault's command with {key.NODE} and {random_key} filled in."""
    for node, key in keys.items():
        cmd = cmd.replace("{key.%s}" % node, key)
    return cmd.replace("{random_key}", random_key())
