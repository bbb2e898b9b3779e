"""``diagnose --fix``: diagnose, apply the fix, and again, until reachable or no fix is known.

After a WireGuard change a tunnel may be between handshakes (WireGuard sends at most one
initiation per 5 s), so a "no handshake" right after a repair is not yet the truth: the loop
probes again, each probe asking for a handshake, before believing it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..network import Network
from ..trace.run import Families, check_family, families
from .run import Diagnosis, diagnose

WG_CAUSES = ("wg-no-handshake", "wg-stale-session")


@dataclass
class FixStep:
    diagnosis: Diagnosis
    n: int = 1                                           # the round
    applied: list[dict] = field(default_factory=list)    # {"node", "command", "status", "output"}


@dataclass
class FixRun:
    steps: list[FixStep]

    @property
    def reachable(self) -> bool:
        return bool(self.steps) and self.steps[-1].diagnosis.reachable

    def to_json(self, lang: str = "en") -> dict:
        return {"steps": [{**s.diagnosis.to_json(), "applied": s.applied} for s in self.steps],
                "reachable": self.reachable}


def apply(net: Network, fix) -> dict:
    """Run one fix command on its node (an argument list: nothing goes through a shell)."""
    r = net.node(fix.node).run(list(fix.argv))
    return {"node": fix.node, "command": fix.command, "status": r.returncode,
            "output": (r.stderr or r.stdout).strip()}


def fix_loop(net: Network, src: str, dst: str, max_rounds: int = 16,
             on_step: Callable[[FixStep], None] = lambda s: None, **kw) -> FixRun:
    """The network is read afresh each round after the first (a fix may change what it holds);
    the caller closes ``net``, this closes what it reopened."""
    steps: list[FixStep] = []
    seen: set[str] = set()
    now = net
    try:
        for _ in range(max_rounds):
            if steps:
                fresh = now.reopened()
                if now is not net and fresh is not now:
                    now.close()
                now = fresh
            d = diagnose(now, src, dst, **kw)
            if steps and steps[-1].applied and d.verdict.cause in WG_CAUSES:
                d = _await_handshake(now, src, dst, d, **kw)
            step = FixStep(d, len(steps) + 1)
            steps.append(step)
            key = repr([f.command for f in d.verdict.fix])
            if d.reachable or not d.verdict.fix or key in seen:     # the same fix again would change nothing
                on_step(step)
                break
            seen.add(key)
            for f in d.verdict.fix:
                step.applied.append(apply(now, f))
                if step.applied[-1]["status"] != 0:
                    break
            on_step(step)
            if any(a["status"] != 0 for a in step.applied):
                break
            time.sleep(0.3 if any(f.argv[0] == "wg" for f in d.verdict.fix) else 0.05)
    finally:
        if now is not net:
            now.close()
    return FixRun(steps)


def fix_loops(net: Network, src: str, dst: str, family: int | None = None, **kw) -> Families:
    """``diagnose --fix`` on the command line: the fix loop in each family the probe is sent in,
    one after another (a fix of the first may already mend the second)."""
    return Families([fix_loop(net, src, dst, family=f, **kw)
                     for f in families(net.model, src, dst, check_family(family))])


def _await_handshake(net: Network, src: str, dst: str, d: Diagnosis, **kw) -> Diagnosis:
    """Probe again (each probe asks for a handshake) for up to 6 s before believing it."""
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline and d.verdict.cause in WG_CAUSES:
        time.sleep(1.0)
        d = diagnose(net, src, dst, **kw)
    return d
