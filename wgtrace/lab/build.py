"""Realise a lab model as namespaces, links and processes, up to a given stage.

Division of labour: the model (model/lab.py) says what should exist; this module makes the
namespaces, cables, keys and services exist; lab/stages.py types each stage's commands;
lab/teardown.py removes it all. Progress is reported through an ``on_event`` callback (the
CLI draws it), never printed from here.
"""
from __future__ import annotations

import os
import time
from typing import Callable

from ..errors import BuildError, LabStateError
from ..nodes.netns import NetnsNode
from ..model.lab import Lab
from . import teardown
from .preflight import (can_switch_user, check_capacity, choose_wg_impl, inotify_use, require_root,
                        require_tools, which)
from .runtime import NETNS_DIR, RUN_ROOT, LabState, lab_dir, load_state, pid_alive
from .services import start_services
from .stages import apply_stages, has_peers, wait_handshakes
from .wgquick import write_wg_quick_files

Event = Callable[[str, dict], None]


def _noop(kind: str, data: dict) -> None:
    pass


def lab_up(lab: Lab, stage: int | None = None, on_event: Event = _noop,
           handshake_timeout: float = 10.0) -> LabState:
    """Build ``lab`` at ``stage`` (default: the last). On any failure or Ctrl-C, nothing is left."""
    require_root()
    wg_impl = choose_wg_impl()
    require_tools(wg_impl, nft=any(n.nft for n in lab.nodes.values()))
    check_capacity(lab, wg_impl)
    stage = len(lab.stages) - 1 if stage is None else stage
    users = wg_impl == "wireguard-go" and can_switch_user()
    if wg_impl == "wireguard-go" and not users:
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
                     nodes=list(lab.nodes), started=time.time(), params=dict(lab.params), wg_users=users)
    state.save()
    try:
        _build(lab, state, stage, on_event, handshake_timeout)
    except BaseException as e:
        on_event("cleanup", {})
        _cleanup(lab.name, e)
        raise
    return state


class BuildInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during ``lab up``; ``left`` says truthfully what could not be removed."""

    def __init__(self, lab: str, left: list[str]) -> None:
        super().__init__(lab)
        self.lab, self.left = lab, left


def _cleanup(name: str, cause: BaseException) -> None:
    """Remove what was built. A second Ctrl-C must not stop the cleanup halfway: the signals are
    ignored until it is done, and then what is left (normally nothing) is checked, not assumed."""
    import signal
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        teardown.lab_down(name)
        left = teardown.leftovers(name)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if isinstance(cause, KeyboardInterrupt):
        raise BuildInterrupted(name, left) from None


def _build(lab: Lab, state: LabState, stage: int, on_event: Event, handshake_timeout: float) -> None:
    nodes = {n: state.node(n) for n in lab.nodes}
    on_event("phase", {"text": "namespaces"})
    state.netns = [os.path.basename(h.netns_path) for h in nodes.values()]
    state.save()                          # recorded before they exist: a crash can't orphan them
    for name, h in nodes.items():
        h.run_dir.mkdir(parents=True)
        h.home_dir.mkdir(mode=0o700)
        if h.wg_uid is not None and lab.nodes[name].wireguard:
            sock = h.run_dir / "wireguard"      # where its wireguard-go puts its sockets
            sock.mkdir()
            os.chown(sock, h.wg_uid, h.wg_uid)
    _nodes(lab, state, nodes)
    on_event("phase", {"text": "keys"})
    state.keys = _keys(lab, nodes)
    state.save()
    write_wg_quick_files(lab, nodes, state.keys)

    on_event("phase", {"text": "links"})
    _links(lab, nodes)
    on_event("phase", {"text": "services"})
    starting = start_services(lab, nodes)
    on_event("stage", {"index": stage, "name": lab.stages[stage].name, "title": lab.stages[stage].title})
    apply_stages(lab, nodes, range(0, stage + 1), state.keys, on_event)
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


def _nodes(lab: Lab, state: LabState, nodes: dict[str, NetnsNode]) -> None:
    """Each node's namespaces and init (nodes/nsinit.py). The inits are recorded as soon as they
    run; a crash before that leaves them in the recorded network namespaces, where teardown
    looks."""
    from ..nodes.netns import kept_paths
    from ..nodes.nsexec import ns_id
    from ..nodes.nsinit import NodeSpec, create_nodes
    keep = kept_paths()
    specs = [NodeSpec(h.netns_path, str(h.run_dir), str(h.home_dir), name, keep,
                      {"WGTRACE_LAB": lab.name, "WGTRACE_NODE": name})
             for name, h in nodes.items()]
    try:
        pids = create_nodes(specs, which("catatonit") or "catatonit")
    except OSError as e:
        raise BuildError(f"the nodes of lab {lab.name!r} could not be made: {e.strerror or e}.") from None
    for (name, h), pid in zip(nodes.items(), pids):
        ns = ns_id(pid, "pid")
        if ns is None:
            raise BuildError(f"the init of node {name} stopped at once.")
        h.init = (pid, ns[1])
        state.inits[name] = [pid, ns[1]]
    state.save()


def _links(lab: Lab, nodes: dict[str, NetnsNode]) -> None:
    """Cables, bridges and addresses, one netlink socket per node (nodes/rtnl.py). Both ends of a
    veth are made directly in their namespaces: nothing passes through the host's."""
    from ..nodes.rtnl import Rtnl
    ends: dict[str, list] = {n: [] for n in lab.nodes}     # node -> links whose first end is there
    for link in lab.links:
        ends[link.a.node].append(link)
    peers_up: dict[str, list[str]] = {n: [] for n in lab.nodes}
    for name, n in lab.nodes.items():
        h = nodes[name]
        with h.inside(), Rtnl() as nl:
            _no_dad()
            nl.set("lo", up=True)
            for br in n.bridges:            # bridges first, so link ends can be enslaved to them
                nl.bridge(br)
                nl.set(br, up=True)
            for link in ends[name]:
                fd = os.open(nodes[link.b.node].netns_path, os.O_RDONLY)
                try:
                    nl.veth(link.a.iface, link.b.iface, fd)
                finally:
                    os.close(fd)
                nl.set(link.a.iface, up=True, master=link.bridge)
                peers_up[link.b.node].append(link.b.iface)
    for name, n in lab.nodes.items():
        with nodes[name].inside(), Rtnl() as nl:
            for ifname in peers_up[name]:
                nl.set(ifname, up=True)
            for ifname, cidrs in n.addresses.items():
                for cidr in cidrs:
                    nl.address(ifname, cidr)


def _no_dad() -> None:
    """In the node whose namespace this thread is in: no duplicate-address detection on any
    interface made from now on (a lab's addresses are unique; an address a student or wg-quick
    adds is usable at once, as IPv4's is). The node's own sysctls, never the host's."""
    for scope in ("default", "all"):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{scope}/accept_dad", "w") as f:
                f.write("0")
        except OSError:
            pass              # no IPv6 in this kernel: nothing to detect


def _keys(lab: Lab, nodes: dict[str, NetnsNode]) -> dict[str, str]:
    """A fresh key pair per WireGuard node, left in its home as ./private and ./public (as
    ``wg genkey | tee private | wg pubkey > public`` would; computed here, no program per node)."""
    import base64
    from ..nodes.uapi import x25519_base
    keys = {}
    for name, n in lab.nodes.items():
        if not n.wireguard:
            continue
        k = bytearray(os.urandom(32))
        k[0] &= 248
        k[31] = (k[31] & 127) | 64                 # clamped, as wg genkey leaves it
        home = nodes[name].home_dir
        fd = os.open(home / "private", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(k).decode() + "\n")
        keys[name] = base64.b64encode(x25519_base(bytes(k))).decode()
        (home / "public").write_text(keys[name] + "\n")
    return keys
