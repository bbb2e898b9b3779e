"""The one place where ``wgtrace serve`` calls the rest of wgtrace.

Everything the page shows or starts goes through here: which labs run on this machine and in
what state (their state files under /run/wgtrace), the model each was built from and its picture
(the report's SVG), a student's progress (teach/progress records), the last ``check --all`` matrix
(kept by teach/checks), and the probes (diagnose, check --all). What comes back is plain data
(``Reading``, dicts); the rest of the package never imports wgtrace's other packages, so that a
change of their API is a change of this module only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import LabFileError, LabStateError, WgtraceError

# What a lab is, as the page says it: up (built, every namespace there), building (lab up is
# running), half-built (lab up died), broken (a namespace is gone), unreadable (no state file).
STATUSES = ("up", "building", "half-built", "broken", "unreadable")


@dataclass
class Reading:
    """One lab as read from its state file, without touching its namespaces."""
    name: str
    status: str
    file: str = ""                     # the lab file's name (not its path)
    stage: int = -1
    stage_name: str = ""
    started: float = 0.0
    missing: list[str] = field(default_factory=list)      # nodes whose namespace is gone
    model: "Shape | None" = None
    model_error: str = ""
    public_keys: frozenset = frozenset()                 # may be shown; any other key may not


@dataclass(frozen=True)
class Shape:
    """What the page needs of a lab's model: nodes, stages, checks, and its picture."""
    nodes: tuple[str, ...]
    stages: tuple[tuple[str, str], ...]          # (name, title)
    checks: int
    root: str                                    # the node the picture is laid out from
    svg: str
    probe: tuple[str, str]                       # the lab's default probe (the page's first choice)


def lab_names() -> list[str]:
    from ..lab.runtime import running_labs
    return running_labs()


def read(name: str, legend: str = "") -> Reading | None:
    """The lab ``name`` as it is now; None when nothing of it is on the machine any more.
    ``legend``: the words under its picture (the page's language)."""
    from ..lab.open import missing_nodes
    from ..lab.runtime import lab_dir, load_state, pid_alive
    st = load_state(name)
    if st is None:
        return Reading(name, "unreadable") if lab_dir(name).is_dir() else None
    if not st.complete:
        status = "building" if pid_alive(st.pid) else "half-built"
        missing: list[str] = []
    else:
        missing = missing_nodes(st)
        status = "broken" if missing else "up"
    r = Reading(name, status, Path(st.file).name, st.stage, st.stage_name, st.started, missing,
                public_keys=frozenset(st.keys.values()))
    try:
        r.model = _built(*_key(st), legend)[1]
    except WgtraceError as e:
        r.model_error = e.message
    except OSError as e:
        r.model_error = f"{st.file}: {e.strerror}"
    return r


def _key(st) -> tuple:
    return st.lab, st.file, st.started, tuple(sorted(st.params.items()))


@lru_cache(maxsize=256)
def _built(name: str, file: str, started: float, params: tuple, legend: str = ""):
    """A build's model never changes: (model, Shape), cached by the lab and its build time."""
    from ..output.svg import LEGEND, topology_svg
    from ..model.labfile import load_lab
    lab = load_lab(file, rename=name, params={k: str(v) for k, v in params})
    names = list(lab.nodes)
    root = lab.probe_src or names[0]
    return lab, Shape(tuple(names), tuple((s.name, s.title) for s in lab.stages), len(lab.checks), root,
                      topology_svg(lab, root, legend=legend or LEGEND), (root, lab.probe_dst or names[-1]))


def picture(name: str, path_nodes: list[str], stop: str | None, legend: str = "") -> str:
    """The lab's picture with a probe's path in green and its stop in red (laid out as the plain one)."""
    from ..lab.open import require_lab
    from ..output.svg import LEGEND, topology_svg
    lab, shape = _built(*_key(require_lab(name)), legend)
    return topology_svg(lab, shape.root, path_nodes, stop, legend=legend or LEGEND)


# --- progress and the last matrix ----------------------------------------------------------------

def records() -> list[dict]:
    """Every progress record on this machine (lessons and the exercise), as plain dicts."""
    from ..teach.progress import state_dir
    out = []
    d = state_dir()
    try:
        paths = [p for p in d.iterdir() if p.suffix == ".json"]
    except OSError:
        return []
    for p in paths:
        try:
            out.append(_record(str(p), os.stat(p).st_mtime_ns))
        except (OSError, ValueError):
            continue
    return [r for r in out if isinstance(r, dict)]


@lru_cache(maxsize=1024)
def _record(path: str, mtime_ns: int) -> dict:
    """A record file read once per change (the poller asks every second)."""
    import json
    return json.loads(Path(path).read_text(encoding="utf-8"))


def matrix(name: str) -> dict | None:
    from ..teach.checks import last_matrix
    return last_matrix(name)


# --- probes -------------------------------------------------------------------------------------

def check_node(name: str, node: str) -> None:
    """LabFileError when lab ``name`` has no node ``node`` (a sentence that names its nodes)."""
    r = read(name)
    if r is not None and r.model is not None and node not in r.model.nodes:
        raise LabFileError(f"lab {name!r} has no node {node!r} (nodes: {', '.join(r.model.nodes)}).")


def diagnose(name: str, src: str, dst: str, kind: str = "icmp", port: int = 0, lang: str = "en") -> dict:
    """One diagnosis on lab ``name``: the verdict as ``Diagnosis.to_json`` gives it, plus the nodes
    the probe was seen on, in order (for the picture)."""
    from ..diagnose.run import diagnose as run_diagnose
    from ..opener import open_network
    kw = {kind: port} if kind in ("tcp", "udp") else {}
    with open_network(lab=name) as net:
        d = run_diagnose(net, src, dst, lang=lang, **kw)
    out = d.to_json(lang)
    out["seconds"] = round(d.seconds, 2)
    out["nodes"] = list(dict.fromkeys(h.node for h in d.trace.hops))
    return out


def check_all(name: str, lang: str = "en") -> dict:
    """Every pair of the lab's checks (kept by teach/checks for the page to read)."""
    from ..opener import open_network
    from ..teach.checks import check_all as run_check_all
    with open_network(lab=name) as net:
        return run_check_all(net, lang).to_json(lang)


def probes_possible() -> str | None:
    """Why this process cannot probe (not root), or None."""
    from ..lab.preflight import require_root
    try:
        require_root()
    except WgtraceError as e:
        return e.message
    return None


__all__ = ["STATUSES", "Reading", "Shape", "lab_names", "read", "picture", "records", "matrix",
           "check_node", "diagnose", "check_all", "probes_possible", "LabFileError", "LabStateError",
           "WgtraceError"]
