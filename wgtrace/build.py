"""Realise a lab model as namespaces, links and processes, up to a given stage.

Division of labour: the model (model.py) says what should exist; this module makes
it exist; teardown.py removes it. Progress is reported through an ``on_event``
callback (the CLI draws it), never printed from here.
"""
from __future__ import annotations

import os
import time
from typing import Callable

from .errors import BuildError, LabStateError
from .model import Lab
from .node import NodeHandle
from .preflight import choose_wg_impl, inotify_use, require_root, require_tools, which
from .runtime import NETNS_DIR, RUN_ROOT, LabState, lab_dir, load_state, pid_alive
from .stages import stage_commands
from . import teardown

Event = Callable[[str, dict], None]


def _noop(kind: str, data: dict) -> None:
    pass


def lab_up(lab: Lab, stage: int | None = None, on_event: Event = _noop,
           handshake_timeout: float = 10.0) -> LabState:
    """Build ``lab`` at ``stage`` (default: the last). On any failure or Ctrl-C, nothing is left."""
    require_root()
    wg_impl = choose_wg_impl()
    require_tools(wg_impl)
    stage = len(lab.stages) - 1 if stage is None else stage
    if wg_impl == "wireguard-go":
        need = sum(len(n.wireguard) for n in lab.nodes.values())
        used, limit = inotify_use()
        if limit and used + need > limit:
            raise LabStateError(f"too many labs are up for one more: each wireguard-go needs an inotify "
                                f"instance and {used} of the {limit} allowed to root (fs.inotify."
                                f"max_user_instances) are in use; take some labs down first.")
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    if not NETNS_DIR.exists():
        # We bring /run/netns into being (netns.create mounts it); the last lab down removes it.
        (RUN_ROOT / "made-run-netns").touch()
    try:
        try:
            os.mkdir(lab_dir(lab.name))
        except FileNotFoundError:         # another lab's teardown just removed /run/wgtrace
            RUN_ROOT.mkdir(parents=True, exist_ok=True)
            os.mkdir(lab_dir(lab.name))
    except FileExistsError:
        st = load_state(lab.name)
        if st and not st.complete and not pid_alive(st.pid):
            raise LabStateError(f"lab {lab.name!r} was left half-built by a crashed run: "
                                f"run 'wgtrace lab down {lab.name}' first.") from None
        raise LabStateError(f"lab {lab.name!r} is already up: use it, or run "
                            f"'wgtrace lab down {lab.name}' first.") from None
    state = LabState(lab=lab.name, file=lab.path, pid=os.getpid(), wg_impl=wg_impl,
                     nodes=list(lab.nodes), started=time.time())
    state.save()
    try:
        _build(lab, state, stage, on_event, handshake_timeout)
    except BaseException:
        on_event("cleanup", {})
        teardown.lab_down(lab.name)
        raise
    return state


def _build(lab: Lab, state: LabState, stage: int, on_event: Event, handshake_timeout: float) -> None:
    from .nsexec import create_netns

    nodes = {n: NodeHandle(lab.name, n, state.wg_impl) for n in lab.nodes}
    on_event("phase", {"text": "namespaces"})
    state.netns = [h.netns for h in nodes.values()]
    state.save()                          # recorded before they exist: a crash can't orphan them
    create_netns([h.netns_path for h in nodes.values()])
    for name, h in nodes.items():
        for sub in ("run", "home"):
            (h.dir / sub).mkdir(parents=True)
        (h.dir / "home").chmod(0o700)
    on_event("phase", {"text": "keys"})
    state.keys = _keys(lab, nodes)
    state.save()

    on_event("phase", {"text": "links"})
    for h in nodes.values():
        with h.iproute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
    _links(lab, nodes)
    on_event("phase", {"text": "services"})
    starting = _services(lab, nodes)
    on_event("stage", {"index": stage, "name": lab.stages[stage].name, "title": lab.stages[stage].title})
    apply_stages(lab, nodes, range(0, stage + 1), state.keys)
    for job in starting:
        job.wait()
    state.stage, state.stage_name = stage, lab.stages[stage].name
    state.save()
    if has_peers(lab, stage):
        on_event("phase", {"text": "handshakes"})
        wait_handshakes(lab, nodes, stage, handshake_timeout)
    state.complete = True
    state.save()
    on_event("ready", {"stage": stage})


def _links(lab: Lab, nodes: dict[str, NodeHandle]) -> None:
    # Bridges first, so link ends can be enslaved to them.
    for name, n in lab.nodes.items():
        for br in n.bridges:
            with nodes[name].iproute() as ipr:
                ipr.link("add", ifname=br, kind="bridge")
                ipr.link("set", index=ipr.link_lookup(ifname=br)[0], state="up")
    for link in lab.links:
        a, b = nodes[link.a.node], nodes[link.b.node]
        with a.iproute() as ipr:
            # Both ends are made directly in their namespaces: nothing passes through the host's.
            ipr.link("add", ifname=link.a.iface, kind="veth",
                     peer={"ifname": link.b.iface, "net_ns_fd": b.netns_path})
            idx = ipr.link_lookup(ifname=link.a.iface)[0]
            if link.bridge:
                ipr.link("set", index=idx, master=ipr.link_lookup(ifname=link.bridge)[0])
            ipr.link("set", index=idx, state="up")
        with b.iproute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=link.b.iface)[0], state="up")
    for name, n in lab.nodes.items():
        with nodes[name].iproute() as ipr:
            for iface, cidr in n.addresses.items():
                addr, plen = cidr.split("/")
                ipr.addr("add", index=ipr.link_lookup(ifname=iface)[0], address=addr, prefixlen=int(plen))


def _keys(lab: Lab, nodes: dict[str, NodeHandle]) -> dict[str, str]:
    """A fresh key pair per WireGuard node, left in its home as ./private and ./public
    (made with ``wg genkey``, all nodes at once)."""
    import subprocess
    wg = which("wg")
    jobs = {}
    for name, n in lab.nodes.items():
        if n.wireguard:
            home = nodes[name].dir / "home"
            jobs[name] = subprocess.Popen(
                ["sh", "-c", f"umask 077; {wg} genkey > private && {wg} pubkey < private > public"],
                cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    keys = {}
    for name, job in jobs.items():
        if job.wait() != 0:
            raise BuildError(f"wg genkey failed for {name}: {job.stderr.read().decode().strip()}")
        keys[name] = (nodes[name].dir / "home" / "public").read_text().strip()
    return keys


SSH_ARGS = ["-f", "/dev/null", "-h", "/root/ssh_host_ed25519_key", "-o", "PidFile=/run/sshd.pid",
            "-o", "PermitRootLogin=yes"]
TCP_LISTENER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(16)\n"
    "while True:\n"
    "    c,_=s.accept(); c.sendall(b'SSH-2.0-wgtrace-listener\\r\\n'); c.close()\n")


def _services(lab: Lab, nodes: dict[str, NodeHandle]) -> list:
    """Start each node's services; returns the jobs still starting (wait for them later)."""
    import shlex
    import subprocess
    import sys
    jobs = []
    sshd = which("sshd")
    for name, n in lab.nodes.items():
        for svc in n.services:
            h = nodes[name]
            if svc.kind == "ssh" and sshd:
                (h.dir / "run" / "sshd").mkdir(mode=0o755, exist_ok=True)
                args = " ".join(shlex.quote(a) for a in [*SSH_ARGS, "-p", str(svc.port)])
                # a real sshd where installed; else a plain listener answers on the port
                # sshd daemonizes by itself; only the fallback listener is sent to the background
                script = (f"ssh-keygen -q -t ed25519 -N '' -f /root/ssh_host_ed25519_key && {sshd} {args} || "
                          f"{{ {shlex.quote(sys.executable)} -c {shlex.quote(TCP_LISTENER)} {svc.port} "
                          f"</dev/null >/dev/null 2>&1 & }}")
                jobs.append(h.start(script))
            else:
                h.popen([sys.executable, "-c", TCP_LISTENER, str(svc.port)], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return jobs


def apply_stage(lab: Lab, nodes: dict[str, NodeHandle], index: int, keys: dict[str, str]) -> None:
    apply_stages(lab, nodes, [index], keys)


def apply_stages(lab: Lab, nodes: dict[str, NodeHandle], indices, keys: dict[str, str]) -> None:
    """Type the stages' commands on every node: one shell per node, nodes side by side.

    A node's commands from its first peer with an endpoint on (those start handshakes) wait
    for a second wave, so the hub already knows every key and answers the first handshake
    at once (a lost one is retried only after 5 s). What comes before runs in the first wave."""
    waves: list[dict[str, list[str]]] = [{}, {}]
    for i in indices:
        for cmd in stage_commands(lab, i, keys):
            second = cmd.node in waves[1] or (" endpoint " in cmd.text and cmd.text.startswith("wg set"))
            lines = waves[1 if second else 0].setdefault(cmd.node, ["set -e"])
            marker = f"echo '@stage {lab.stages[i].name}' >&2"
            if marker not in lines:
                lines.append(marker)
            lines.append(cmd.text)
    for wave in waves:
        running = [(n, nodes[n].start("\n".join(lines) + "\n")) for n, lines in wave.items()]
        for node, job in running:
            r = job.wait()
            if r.returncode != 0:
                lines = [l for l in r.stderr.strip().splitlines()]
                stage = next((l.split()[1] for l in reversed(lines) if l.startswith("@stage ")), "?")
                msg = [l for l in lines if not l.startswith("@stage ")]
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


def wait_handshakes(lab: Lab, nodes: dict[str, NodeHandle], stage: int, timeout: float) -> bool:
    """Wait until every configured peer has completed a handshake (or time runs out)."""
    from .wgstate import read_wg
    deadline = time.monotonic() + timeout
    while True:
        pending = []
        for node in lab.nodes:
            want = wg_peers_at(lab, node, stage)
            if not want:
                continue
            peers = [p for i in read_wg(nodes[node]) for p in i.peers]
            if len(peers) < len(want) or any(p.latest_handshake == 0 for p in peers):
                pending.append(node)
        if not pending:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def advance(state: LabState, lab: Lab, index: int, handshake_timeout: float = 10.0) -> None:
    """Apply stage ``index`` to a running lab (the walkthrough's next step)."""
    nodes = {n: NodeHandle(state.lab, n, state.wg_impl) for n in lab.nodes}
    apply_stage(lab, nodes, index, state.keys)
    state.stage, state.stage_name = index, lab.stages[index].name
    state.save()
    if has_peers(lab, index) and not has_peers(lab, index - 1):
        wait_handshakes(lab, nodes, index, handshake_timeout)
