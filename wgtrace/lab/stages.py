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
    """Type the stages' commands on every node: one shell per node, nodes side by side, in the
    waves of ``plan_waves``."""
    waves = plan_waves(lab, indices, keys)
    last = {n: k for k, wave in enumerate(waves) for n in wave}
    total, done = len(last), set()
    for k, wave in enumerate(waves):
        running = [(n, nodes[n].start(["sh", "-c", "\n".join(lines) + "\n"])) for n, lines in wave.items()]
        failed = []
        for node, job in running:                 # every one waited for, also after a failure
            r = job.wait()
            if last[node] == k:
                done.add(node)
                on_event("progress", {"done": len(done), "total": total})
            if r.returncode != 0:
                failed.append((node, r))
        for node, r in failed[:1]:
            lines = r.stderr.strip().splitlines()
            stage = next((l.split()[1] for l in reversed(lines) if l.startswith("@stage ")), "?")
            msg = [l for l in lines if not l.startswith(("@stage ", "[#] "))]     # [#]: wg-quick's echo
            raise BuildError(f"stage {stage!r} failed on {node}: "
                             f"{msg[-1] if msg else 'exit status ' + str(r.returncode)}")


def plan_waves(lab: Lab, indices, keys: dict[str, str]) -> list[dict[str, list[str]]]:
    """Each wave's shell script per node. The scripts are made of quoted argument lists
    (shlex.join): lab-file text is never shell.

    A node's commands from its first peer with an endpoint on (those start handshakes) wait
    for a second wave, so the hub already knows every key and answers the first handshake
    at once (a lost one is retried only after 5 s). What comes before runs in the first wave.
    Keepalives are turned on in a third wave, once every node knows its peers: in a ring of
    keepalives (a mesh) someone's first handshake would otherwise reach a node that does not
    know it yet. The state at the end is the same as the commands', typed in order."""
    waves: list[dict[str, list[str]]] = [{}, {}, {}]

    def add(wave: int, node: str, stage: int, argv) -> None:
        lines = waves[wave].setdefault(node, ["set -e"])
        marker = f"echo {shlex.quote('@stage ' + lab.stages[stage].name)} >&2"
        if marker not in lines:
            lines.append(marker)
        lines.append(shlex.join(argv))

    keepalives: dict[tuple[str, str, str], tuple[int, tuple[str, ...]]] = {}     # (node, iface, key)
    for i in indices:
        for cmd in stage_commands(lab, i, keys):
            if cmd.node not in waves[1] and not starts_handshakes(lab, cmd):
                add(0, cmd.node, i, cmd.argv)
                continue
            argv, later = keepalive_later(cmd.argv)
            add(1, cmd.node, i, argv)
            for k in [k for k in keepalives if k[0] == cmd.node and undoes(cmd.argv, k[1], k[2])]:
                del keepalives[k]                   # a later command's word wins
            if later:
                keepalives[(cmd.node, later[2], later[4])] = (i, later)
    for (node, _, _), (i, argv) in keepalives.items():
        add(2, node, i, argv)
    return waves


def keepalive_later(argv) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """A ``wg set`` that turns a keepalive on, as the same command without it and the keepalive
    alone (``wg set IF peer KEY persistent-keepalive N``); any other command as it is."""
    argv = tuple(argv)
    if argv[:2] != ("wg", "set") or "persistent-keepalive" not in argv:
        return argv, None
    at = argv.index("persistent-keepalive")
    if at + 1 >= len(argv) or argv[at + 1] in ("0", "off"):
        return argv, None
    peer = max(i for i, a in enumerate(argv[:at]) if a == "peer")
    return argv[:at] + argv[at + 2:], ("wg", "set", argv[2], "peer", argv[peer + 1], *argv[at:at + 2])


def undoes(argv, iface: str, key: str) -> bool:
    """Does this command remove the peer, set its keepalive itself, or delete its interface?"""
    argv = tuple(argv)
    if argv[:3] == ("wg", "set", iface):
        removed = any(argv[i:i + 3] == ("peer", key, "remove") for i in range(len(argv)))
        last = max((i for i, a in enumerate(argv) if a == "peer"), default=None)
        return removed or (last is not None and argv[last + 1] == key and "persistent-keepalive" in argv[last:])
    return (argv[:3] == ("ip", "link", "del") or argv[:3] == ("ip", "link", "delete")) and iface in argv[3:] \
        or (argv[:2] == ("wg-quick", "down") and iface in argv[2:])


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
