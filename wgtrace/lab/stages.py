"""Type a lab's stages on its nodes: each stage's commands, then wait for the handshakes."""
from __future__ import annotations

import shlex
import time

from ..errors import BuildError
from ..nodes.netns import NetnsNode
from ..model.commands import self_starting, stage_commands, starts_handshakes
from ..model.lab import Lab
from .runtime import LabState


def apply_stages(lab: Lab, nodes: dict[str, NetnsNode], indices, keys: dict[str, str],
                 on_event=lambda kind, data: None) -> None:
    """Type the stages' commands on every node: one shell per node, nodes side by side. The
    script is made of quoted argument lists (shlex.join): lab-file text is never shell.

    A node's commands from its first peer with an endpoint on (those start handshakes) wait
    for a second wave, so the hub already knows every key and answers the first handshake
    at once (a lost one is retried only after 5 s). What comes before runs in the first wave."""
    waves: list[dict[str, list[str]]] = [{}, {}]
    for i in indices:
        for cmd in stage_commands(lab, i, keys):
            second = cmd.node in waves[1] or starts_handshakes(lab, cmd)
            lines = waves[1 if second else 0].setdefault(cmd.node, ["set -e"])
            marker = f"echo {shlex.quote('@stage ' + lab.stages[i].name)} >&2"
            if marker not in lines:
                lines.append(marker)
            lines.append(shlex.join(cmd.argv))
    total, done = len(set(waves[0]) | set(waves[1])), set()
    for wave in waves:
        running = [(n, nodes[n].start(["sh", "-c", "\n".join(lines) + "\n"])) for n, lines in wave.items()]
        for node, job in running:
            r = job.wait()
            if node not in waves[1] or wave is waves[1]:
                done.add(node)
                on_event("progress", {"done": len(done), "total": total})
            if r.returncode != 0:
                lines = r.stderr.strip().splitlines()
                stage = next((l.split()[1] for l in reversed(lines) if l.startswith("@stage ")), "?")
                msg = [l for l in lines if not l.startswith(("@stage ", "[#] "))]     # [#]: wg-quick's echo
                raise BuildError(f"stage {stage!r} failed on {node}: "
                                 f"{msg[-1] if msg else 'exit status ' + str(r.returncode)}")


def has_peers(lab: Lab, stage: int) -> bool:
    return any(wg_peers_at(lab, node, stage) for node in lab.nodes)


def wg_peers_at(lab: Lab, node: str, stage: int) -> list[str]:
    """Peer node names configured on ``node`` once ``stage`` is applied."""
    names = {s.name: i for i, s in enumerate(lab.stages)}
    peers = []
    for w in lab.nodes[node].wireguard.values():
        if names.get(w.stage, 0) > stage:
            continue
        for p in w.peers:
            if names.get(p.stage, 0) <= stage and p.peer not in peers:
                peers.append(p.peer)
    return peers


def wait_handshakes(lab: Lab, nodes: dict[str, NetnsNode], stage: int, timeout: float) -> bool:
    """Wait until every configured peer that starts a handshake by itself (model/commands.py:
    ``self_starting``) has completed one (or time runs out); the others wait for traffic, as on
    a machine."""
    deadline = time.monotonic() + timeout
    while True:
        pending = []
        for node in lab.nodes:
            want = [p for p in wg_peers_at(lab, node, stage) if self_starting(lab, node, p, stage)]
            if not want:
                continue
            h = nodes[node]
            keys = {(nodes[p].home_dir / "public").read_text().strip() for p in want}
            peers = [p for i in (h.wg(pubkey=False) if h.wg_in_process else h.wg()) for p in i.peers
                     if p.public_key in keys]
            if len(peers) < len(want) or any(p.latest_handshake == 0 for p in peers):
                pending.append(node)
        if not pending:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def advance(state: LabState, lab: Lab, index: int, handshake_timeout: float = 10.0) -> None:
    """Apply stage ``index`` to a running lab (the walkthrough's next step)."""
    nodes = {n: state.node(n) for n in lab.nodes}
    apply_stages(lab, nodes, [index], state.keys)
    state.stage, state.stage_name = index, lab.stages[index].name
    state.save()
    if has_peers(lab, index) and not has_peers(lab, index - 1):
        wait_handshakes(lab, nodes, index, handshake_timeout)
