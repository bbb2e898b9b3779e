"""The fault catalogue: named ways to break a finished lab, each with the verdict it must get.

Faults are data (labs/<lab>.faults.toml): for named nodes, commands of the tools a person would
type (``ip``, ``wg``, ``iptables``, ``ip6tables``, ``nft``, ``sysctl``; several joined by ``&&``) or a service
to stop; the probe that shows the fault (by default the lab's own); and the expected cause,
stop node and direction. Like a lab file, a catalogue is never shell: each command is checked
to be words for one of those tools and runs as an argument list. lab/inject.py runs them.
"""
from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabFileError

TOOLS = ("ip", "wg", "iptables", "ip6tables", "nft", "sysctl")
WORD = re.compile(r"^[A-Za-z0-9_.:/,!+=@%^{}-]+$")
NFT_WORD = re.compile(r"^[A-Za-z0-9_.:/,!+=@%^{}<>;*\[\]-]+$")   # nft's own: { … ; … }, "eth*", < >
NFT_REFUSED = {"-f", "--file", "-i", "--interactive", "-I", "--includepath", "-D", "--define", "include", "define"}
SERVICES = ("ssh",)


@dataclass(frozen=True)
class Step:
    node: str
    argv: tuple[str, ...] = ()       # a command, with {key.NODE} / {random_key} still to fill in
    stop: str = ""                   # or: a service to stop

    @property
    def text(self) -> str:
        return shlex.join(self.argv) if self.argv else f"(stop the {self.stop} service)"


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    inject: tuple[Step, ...]
    cause: str
    node: str
    direction: str
    probe: dict = field(default_factory=dict)    # e.g. {"size": 1400}, {"src": "pc1", "tcp": 22}


def faults_file(lab_file: str) -> Path:
    p = Path(lab_file)
    return p.with_name(p.stem + ".faults.toml")


def _steps(path: Path, key: str, items, nodes) -> tuple[Step, ...]:
    if not isinstance(items, list) or not items:
        raise LabFileError(f"{path}: {key}: a list of {{ node, command }} or {{ node, stop }} tables")
    out = []
    for j, x in enumerate(items):
        k = f"{key}[{j}]"
        if not isinstance(x, dict) or "node" not in x or ("command" in x) == ("stop" in x):
            raise LabFileError(f"{path}: {k}: needs a node and either a command or a service to stop")
        if nodes is not None and x["node"] not in nodes:
            raise LabFileError(f"{path}: {k}.node: unknown node {x['node']!r}")
        if "stop" in x:
            if x["stop"] not in SERVICES:
                raise LabFileError(f"{path}: {k}.stop: a service is one of {', '.join(SERVICES)}")
            out.append(Step(x["node"], stop=x["stop"]))
            continue
        try:
            words = shlex.split(str(x["command"]))
        except ValueError:
            raise LabFileError(f"{path}: {k}.command: unbalanced quotes") from None
        cmd: list[str] = []
        for w in words + ["&&"]:
            if w != "&&":
                nft = bool(cmd) and cmd[0] == "nft"
                if nft and w in NFT_REFUSED:
                    raise LabFileError(f"{path}: {k}.command: nft {w} is not allowed (a fault changes the ruleset "
                                       f"by commands; it reads no files)")
                if not (WORD.match(w) or nft and NFT_WORD.match(w)):
                    raise LabFileError(f"{path}: {k}.command: {w!r} is not a plain word (faults are commands "
                                       f"of {', '.join(TOOLS)}, joined by &&, never shell)")
                cmd.append(w)
                continue
            if not cmd or cmd[0] not in TOOLS or (cmd[0].endswith("iptables") and any(a.startswith("--modprobe") for a in cmd)):
                raise LabFileError(f"{path}: {k}.command: each command is one of {', '.join(TOOLS)}")
            out.append(Step(x["node"], tuple(cmd)))
            cmd = []
    return tuple(out)


def load_faults(lab_file: str, nodes=None) -> list[Fault]:
    """The catalogue beside a lab file; ``nodes``: the lab's node names, to check them."""
    path = faults_file(lab_file)
    if not path.is_file():
        raise LabFileError(f"this lab has no fault catalogue ({path.name} is missing).")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise LabFileError(f"{path}: cannot be read as TOML ({e}).") from None
    out = []
    for i, f in enumerate(data.get("fault", [])):
        try:
            e = f["expect"]
            probe = dict(f.get("probe", {}))
            out.append(Fault(f["name"], f.get("summary", ""), _steps(path, f"fault[{i}].inject", f["inject"], nodes),
                             e["cause"], e["node"], e.get("direction", "request"), probe))
        except (KeyError, TypeError) as err:
            raise LabFileError(f"{path}: fault[{i}]: missing {err}") from None
    return out


def find_fault(faults: list[Fault], name: str) -> Fault:
    for f in faults:
        if f.name == name:
            return f
    raise LabFileError(f"no fault {name!r}; 'wgtrace break --list' shows them.")


def pick(faults: list[Fault], k: int, seed: int) -> list[Fault]:
    """K faults for an exercise, the same for the same seed. Faults that need an oversized probe
    are left out, and so is a second fault on the same node and subject (they would overwrite
    each other: two changes to one peer)."""
    import random
    rng = random.Random(seed)
    pool = [f for f in faults if "size" not in f.probe]
    rng.shuffle(pool)
    chosen, subjects = [], set()
    for f in pool:
        subj = {(s.node, s.argv[0] + (" " + s.argv[1] if s.argv[0] == "wg" else "") if s.argv else s.stop)
                for s in f.inject}
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


def fill(argv: tuple[str, ...], keys: dict[str, str]) -> tuple[str, ...]:
    """A fault's command with {key.NODE} and {random_key} filled in (one random key per command)."""
    rnd = random_key()
    out = []
    for a in argv:
        for node, key in keys.items():
            a = a.replace("{key.%s}" % node, key)
        out.append(a.replace("{random_key}", rnd))
    return tuple(out)
