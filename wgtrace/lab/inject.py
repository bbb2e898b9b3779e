"""Break a running lab on purpose: run a fault's commands on its nodes (an exercise)."""
from __future__ import annotations

from ..errors import BuildError
from ..spec.faults import Fault, render_command
from .runtime import LabState


def inject(fault: Fault, state: LabState) -> list[tuple[str, str]]:
    """Run the fault's commands; returns what ran. Raises if a node refused one.

    Fault commands are shell on purpose (``kill $(cat /run/sshd.pid)``): a catalogue is written
    by the lab's author, like a lesson; lab files themselves never reach a shell."""
    done = []
    for node, cmd in fault.inject:
        text = render_command(cmd, state.keys)
        r = state.node(node).run(["sh", "-c", text])
        if r.returncode != 0:
            raise BuildError(f"fault {fault.name!r} could not be injected on {node}: "
                             f"{(r.stderr or r.stdout).strip()}")
        done.append((node, text))
    return done
