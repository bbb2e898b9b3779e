"""Open real hosts as a ``Network``: the one place where a network's nodes are chosen to be SSH hosts.

Connect to every host at once, read every host's state at once, and build the model the verdict
rules read (addresses, peers, routes, links) from that state with discovery's own code, so trace
and diagnose work on hosts exactly as on a lab. Keys are the hosts' real public keys (from
their redacted dumps). A host that cannot be reached stays in the network as a node that
cannot be read; ``Network.unseen`` says why, and diagnose reports it as evidence.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from ..errors import LabFileError
from ..network import Network
from ..nodes.ssh import Hosts, SshNode
from ..nodes.sshconn import Pool
from .file import HostsFile, load_hosts
from .mgmt import logins, management


def connect(hf: HostsFile) -> Hosts:
    pool = Pool(hf.ssh_config)
    hosts = Hosts(pool)
    for h in hf.hosts.values():
        SshNode(h.name, pool.add(h.name, h.ssh, h.port, h.sudo), hosts, h.ignore)
    try:
        pool.open()
        hosts.refresh()
        settle(hf, hosts)
    except BaseException:
        hosts.close()
        raise
    return hosts


def settle(hf: HostsFile, hosts: Hosts) -> dict[str, str]:
    """Each host's management interface (the one it is logged into over, when it carries nothing
    else) left out of the picture, unless the hosts file says the host has none; the addresses
    the hosts are logged into."""
    states = {n: h.state for n, h in hosts.nodes.items() if h.state is not None and not h.problem}
    for n, iface in management(states).items():
        if hf.hosts[n].management:
            hosts.nodes[n].ignore.add(iface)
    return logins(states)


def build_network(hf: HostsFile, hosts: Hosts) -> Network:
    """The model from the hosts' state, as ``discover`` would write it."""
    from ..model.parse import parse_lab
    from .discover import discover
    states = {n: h.state for n, h in hosts.nodes.items() if h.state is not None and not h.problem}
    ignore = {n: set(h.ignore) for n, h in hosts.nodes.items()}
    data, _ = discover(hf.name, states, ignore, f"hosts of {hf.path}")
    try:
        model = parse_lab(data, hf.path)
    except LabFileError as e:        # discovery writes only what the checks accept: a bug if not
        raise LabFileError(f"{hf.path}: the hosts' state did not make a valid model ({e.message}).",
                           e.details) from None
    keys = {n: next((w.public_key for w in st.wg), "") for n, st in states.items()}
    net = Network(hf.name, model, dict(hosts.nodes), {n: k for n, k in keys.items() if k},
                  whole=False, unseen=hosts.unseen, outside=True, logins=settle(hf, hosts))
    net.refresh = lambda: reread(net)
    return net


@contextlib.contextmanager
def open_hosts(path: str) -> Iterator[Network]:
    """The hosts of a hosts file as a Network while the block runs; every connection closed after."""
    hf = load_hosts(path)
    hosts = connect(hf)
    try:
        yield build_network(hf, hosts)
    finally:
        hosts.close()


def reread(net: Network) -> Network:
    """The same hosts, their state read again (after a fix): a new model on the same connections."""
    hosts: Hosts = next(iter(net.nodes.values())).hosts
    hosts.refresh()
    fresh = build_network(load_hosts(net.model.path), hosts)     # the same nodes: what they ask stays
    fresh.resolved = net.resolved                                 # a name is resolved once per run
    return fresh
