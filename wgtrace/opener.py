"""The one way to open a network: ``open_network(lab=…)`` a running lab, ``open_network(hosts=…)`` a
hosts file (or an Ansible inventory) of real machines; ``only`` keeps some of its nodes in view (the
rest as if they were not there: a lab seen as hosts are, hosts/watch.py). Both are context
managers, and everything the network holds open is closed when the block ends. A new backend
(a container, a pod) adds its node class under ``nodes/``, an opener of its own, and one branch
here; no caller changes.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

from .network import Network


@contextlib.contextmanager
def open_network(lab: str | None = None, hosts: str | None = None,
                 only: str | Sequence[str] | None = None) -> Iterator[Network]:
    """A running lab (``lab``: its name; None: the only one up) or the hosts of a hosts file,
    open while the block runs."""
    if hosts is not None:
        from .hosts.open import open_hosts
        with open_hosts(hosts, only) as net:
            yield net
        return
    from .lab.open import open_lab
    net = open_lab(lab)
    try:
        if only:
            from .hosts.watch import in_view
            yield in_view(net, only)
        else:
            yield net
    finally:
        net.close()
