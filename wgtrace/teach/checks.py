"""``check --all``: every pair the lab file lists under ``checks``, as a matrix (src x dst).

A check without a ``family`` is made in every family both of its ends have (trace/run.families):
a dual-stack pair is two cells, ``pc2`` and ``pc2 v6``. A pair that gets through around a full
tunnel (trace/leak.py) is reachable with a note naming the interface it left by.

Graders use it, and so do the tests that make sure a fix took reachability away from nobody.
The last matrix of a running lab is kept beside its state (``checks.json`` in the lab's directory,
gone with the lab), so that ``wgtrace serve`` shows it without probing again.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ..addr import ip
from ..diagnose.run import diagnose
from ..trace.leak import leak_of
from ..trace.run import families, run_trace
from ..errors import LabFileError
from ..network import Network
from ..model.lab import Check


@dataclass
class PairResult:
    check: Check
    cause: str
    stop: str | None            # the node where it stopped
    family: int = 4
    leak: str | None = None     # reachable, but around the full tunnel: the interface it left by

    @property
    def ok(self) -> bool:
        return self.cause == "reachable"

    @property
    def column(self) -> str:
        """The matrix column: the destination, its probe unless ICMP, ``v6`` for IPv6."""
        c = self.check
        v6 = self.family == 6 and ip(c.dst) is None       # an IPv6 address says so itself
        return c.dst + ("" if c.kind == "icmp" else f" {c.label}") + (" v6" if v6 else "")


@dataclass
class CheckMatrix:
    lab: str
    results: list[PairResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def srcs(self) -> list[str]:
        return list(dict.fromkeys(r.check.src for r in self.results))

    @property
    def dsts(self) -> list[str]:
        return list(dict.fromkeys(r.column for r in self.results))

    def result(self, src: str, dst: str) -> PairResult | None:
        return next((r for r in self.results if r.check.src == src and r.column == dst), None)

    def to_json(self, lang: str = "en") -> dict:
        return {"lab": self.lab, "passed": self.passed,
                "checks": [{"src": r.check.src, "dst": r.check.dst, "probe": r.check.label, "family": r.family,
                            "cause": r.cause, "stop": r.stop, "reachable": r.ok, "leak": r.leak}
                           for r in self.results]}


def check_all(net: Network, lang: str = "en") -> CheckMatrix:
    """Each pair traced first (a capture, no state read: a healthy pair costs only that); a pair
    that does not get through is diagnosed for its cause and place."""
    if not net.model.checks:
        raise LabFileError(f"lab {net.name!r} lists no checks (a `checks` list in its lab file).")
    m = CheckMatrix(net.name)
    for c in net.model.checks:
        kw = {c.kind: c.port} if c.kind != "icmp" else {}
        for fam in families(net.model, c.src, c.dst, c.family):
            res = run_trace(net, c.src, c.dst, family=fam, **kw)
            if res.reachable:
                node = net.nodes[c.src]
                left = leak_of(res, node.wg(), node.links())
                m.results.append(PairResult(c, "reachable", None, fam, left[0] if left else None))
                continue
            d = diagnose(net, c.src, c.dst, lang=lang, family=fam, **kw)
            m.results.append(PairResult(c, d.verdict.cause, d.verdict.stop.node if d.verdict.stop else None, fam))
    remember(net, m)
    return m


MATRIX_FILE = "checks.json"


def remember(net: Network, m: CheckMatrix) -> None:
    """Keep the matrix with the build and stage it was made at (a lab's own directory only)."""
    if net.state is None:
        return
    from ..lab.runtime import lab_dir
    data = {"at": time.time(), "started": net.state.started, "stage": net.state.stage, **m.to_json()}
    path = lab_dir(net.name) / MATRIX_FILE
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:              # the lab went away meanwhile: nothing to keep it for
        pass


def last_matrix(lab: str) -> dict | None:
    """The last matrix ``check_all`` kept for lab ``lab``: to_json() plus "at", "started", "stage"."""
    from ..lab.runtime import lab_dir
    try:
        return json.loads((lab_dir(lab) / MATRIX_FILE).read_text())
    except (OSError, ValueError):
        return None
