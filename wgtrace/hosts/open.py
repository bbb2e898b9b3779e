"""Open real hosts as a ``Network``: the one place where a network's nodes are chosen to be SSH hosts
(or, for ``local = true``, the machine wgtrace runs on).

Connect to every host at once, read every host's state at once, and build the model the verdict
rules read (addresses, peers, routes, links) from that state with discovery's own code, so trace
and diagnose work on hosts exactly as on a lab. Keys are the hosts' real public keys (from
their redacted dumps). A host that cannot be reached stays in the network as a node that
cannot be read; ``Network.unseen`` says why, and diagnose reports it as evidence.
"""
from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Iterator

from ..errors import LabFileError
from ..network import Network
from ..nodes.base import Node
from ..nodes.ssh import Hosts, SshNode
from ..nodes.sshconn import Pool
from ..nodes.sshstate import HostState
from .file import HostsFile, load_hosts
from .mgmt import logins, management


@dataclass
class Opened:
    """The hosts of one hosts file, connected: the SSH ones (one pool) and the local one, if any."""
    hf: HostsFile
    hosts: Hosts
    local: object = None                  # nodes.local.LocalNode
    unseen: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.unseen = self.hosts.unseen       # one dict: a capture that fails later shows in it too

    @property
    def nodes(self) -> dict[str, Node]:
        both = {**self.hosts.nodes, **({self.local.name: self.local} if self.local else {})}
        return {n: both[n] for n in self.hf.hosts}

    def states(self) -> dict[str, HostState]:
        return {n: h.state for n, h in self.nodes.items() if h.state is not None and not h.problem}

    def refresh(self, first: bool = False) -> None:
        """Every host's snapshot read (``first``: logging in to them, in the same go)."""
        self.hosts.open() if first else self.hosts.refresh()
        if self.local is not None:
            self.local.refresh()
            self.hosts.others = {self.local.name: self.local.state} if self.local.state else {}
        self.hosts.update_unseen()
        if self.local is not None:
            self.unseen.pop(self.local.name, None)
        if self.local is not None and self.local.unseen():
            self.unseen[self.local.name] = self.local.unseen()

    def close(self) -> None:
        if self.local is not None:
            self.local.close()
        self.hosts.close()


def connect(hf: HostsFile, firewall: bool = True) -> Opened:
    """``firewall``: the first snapshot reads every host's firewall too (``discover`` needs it; a
    diagnosis reads it before the probe, on the hosts it watches: in a big network, its path)."""
    pool = Pool(hf.ssh_config)
    hosts = Hosts(pool)
    hosts.firewall = firewall
    local = None
    for h in hf.hosts.values():
        if h.local:
            from ..nodes.local import LocalNode
            local = LocalNode(h.name, h.ignore)
        else:
            SshNode(h.name, pool.add(h.name, h.ssh, h.port, h.sudo, h.ssh_args), hosts, h.ignore)
    opened = Opened(hf, hosts, local)
    try:
        opened.refresh(first=True)
        settle(opened)
    except BaseException:
        opened.close()
        raise
    return opened


def settle(opened: Opened) -> dict[str, str]:
    """Each host's management interface (the one it is logged into over, when it carries nothing
    else) left out of the picture, unless the hosts file says the host has none; the addresses
    the hosts are logged into."""
    states = opened.states()
    for n, iface in management(states).items():
        if opened.hf.hosts[n].management:
            opened.nodes[n].ignore.add(iface)
    return logins(states)


def build_network(opened: Opened) -> Network:
    """The model from the hosts' state, as ``discover`` would write it."""
    from ..model.parse import parse_lab
    from .discover import OUT_OF_VIEW, discover
    hf = opened.hf
    states = opened.states()
    ignore = {n: set(getattr(h, "ignore", ())) for n, h in opened.nodes.items()}
    data, _ = discover(hf.name, states, ignore, f"hosts of {hf.path}", OUT_OF_VIEW)
    try:
        model = dataclasses.replace(parse_lab(data, hf.path), source=data)
    except LabFileError as e:        # discovery writes only what the checks accept: a bug if not
        raise LabFileError(f"{hf.path}: the hosts' state did not make a valid model ({e.message}).",
                           e.details) from None
    keys = {n: next((w.public_key for w in st.wg), "") for n, st in states.items()}
    net = Network(hf.name, model, opened.nodes, {n: k for n, k in keys.items() if k},
                  whole=False, unseen=opened.unseen, outside=True, logins=settle(opened))
    net.refresh = lambda: reread(net, opened)
    return net


@contextlib.contextmanager
def open_hosts(path: str, only=None) -> Iterator[Network]:
    """The hosts of a hosts file (or an Ansible inventory) as a Network while the block runs (``only``:
    just these of them); every connection closed after."""
    hf = load_hosts(path)
    if only:
        from .watch import only_names
        keep = only_names(only, list(hf.hosts), path, hf.groups)
        hf = dataclasses.replace(hf, hosts={n: h for n, h in hf.hosts.items() if n in keep})
    from ..trace.scope import SMALL
    opened = connect(hf, firewall=len(hf.hosts) <= SMALL)
    try:
        yield build_network(opened)
    finally:
        opened.close()


def reread(net: Network, opened: Opened) -> Network:
    """The same hosts, their state read again (after a fix): a new model on the same connections."""
    opened.refresh()
    fresh = build_network(opened)      # (from the hosts it was opened with, ``only`` or not)      # the same nodes: what they ask stays
    fresh.resolved = net.resolved      # a name is resolved once per run
    return fresh
