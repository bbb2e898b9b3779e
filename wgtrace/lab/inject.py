"""Break a running lab on purpose: run a fault's steps on its nodes (an exercise)."""
from __future__ import annotations

import os
import shlex
import signal

from ..errors import BuildError
from ..model.faults import Fault, fill
from .runtime import LabState


def _stop_service(state: LabState, node: str, service: str) -> str:
    """Stop a service the lab started on ``node``: its pid file in the node's own /run holds its
    pid as the node sees it, which only a process of that node can have."""
    h = state.node(node)
    try:
        pid = int((h.run_dir / "sshd.pid").read_text().split()[0])
        host_pid = h.host_pid(pid)
        if host_pid is None:
            raise ValueError           # not a process of that node: never kill anything else
        os.kill(host_pid, signal.SIGTERM)
    except (OSError, ValueError, IndexError):
        raise BuildError(f"no {service} service is running on {node}.") from None
    return f"kill {pid}  # {service}"


def inject(fault: Fault, state: LabState) -> list[tuple[str, str]]:
    """Run the fault's steps; returns what ran, as text. Raises if a node refused one."""
    done = []
    for step in fault.inject:
        if step.stop:
            done.append((step.node, _stop_service(state, step.node, step.stop)))
            continue
        argv = fill(step.argv, state.keys)
        r = state.node(step.node).run(list(argv))
        if r.returncode != 0:
            raise BuildError(f"fault {fault.name!r} could not be injected on {step.node}: "
                             f"{(r.stderr or r.stdout).strip()}")
        done.append((step.node, shlex.join(argv)))
    return done
