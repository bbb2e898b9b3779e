"""A network to probe, whatever its nodes are made of, and the one way to open one.

A ``Network`` is a description (the lab file's model, or one written from real hosts' state),
its nodes (``nodes.base.Node``: a lab namespace, an SSH host, any other backend) and their
public keys. Trace, diagnose, status and the courses hold a ``Network`` and never ask what it is
made of; what differs between backends is a property of the node or of the network given here
by the opener (``whole``, ``unseen``, ``lock``, ``refresh``), not a branch in the caller.

Networks are opened by ``opener.open_network``, the one place that knows the backends.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import LabFileError
from .model.lab import Lab
from .nodes.base import Node


@dataclass
class Network:
    name: str
    model: Lab
    nodes: dict[str, Node]
    keys: dict[str, str] = field(default_factory=dict)     # node -> WireGuard public key
    stage: int | None = None           # the lab's stage (None: complete, or not a staged lab)
    # True where every node must be readable (a lab: a node that is gone means a broken lab);
    # False where a node that cannot be read is evidence (real hosts), said in ``unseen``.
    whole: bool = True
    unseen: dict[str, str] = field(default_factory=dict)   # node -> what of it cannot be seen
    lock: Path | None = None           # held while a probe is out (a lab's probe lock file)
    refresh: Callable[[], "Network"] | None = None         # the same network, its state read again
    state: object = None               # the backend's own record (lab/runtime.LabState for a lab)
    # Real hosts: a probe may go to any address the operator names (the internet behind a full
    # tunnel); a lab's probes stay inside the lab's networks.
    outside: bool = False
    logins: dict[str, str] = field(default_factory=dict)   # node -> the address it is reached over
    resolved: dict[str, str] = field(default_factory=dict)  # a destination's name -> its address, resolved once

    def exclusive(self):
        """Held while a probe is out: two probes at once on one network would count each other's
        packets in the firewall counters."""
        if self.lock is None:
            return contextlib.nullcontext()

        @contextlib.contextmanager
        def held():
            import fcntl
            with open(self.lock, "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        return held()

    def reopened(self) -> "Network":
        """After a change (a fix): the network as it is now."""
        return self.refresh() if self.refresh else self

    def close(self) -> None:
        for n in self.nodes.values():
            n.close()

    def node(self, name: str) -> Node:
        if name not in self.nodes:
            raise LabFileError(f"no node {name!r} in {self.name!r} (nodes: {', '.join(self.nodes)}).")
        return self.nodes[name]

    def ask_before_changes(self, confirm: Callable[[str, list[str]], bool] | None) -> None:
        """``--fix`` on nodes that are someone's machines: each change asks ``confirm`` first."""
        for n in self.nodes.values():
            n.ask_before_changes(confirm)
