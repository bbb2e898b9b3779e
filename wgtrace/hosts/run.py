"""trace and diagnose on real hosts: open them, check the probe's ends can be used, run, close.

The command line asks the questions (``confirm`` before a fix runs on a host); everything else is
here, so ``cli/hosts.py`` only parses, calls and shows.
"""
from __future__ import annotations

from typing import Callable

from ..errors import LabFileError
from ..network import Network
from .open import open_hosts


def probe_ends(net: Network, src: str, dst: str) -> None:
    """The probe needs its sender; a destination host that cannot be read has no address to aim at."""
    unseen = net.unseen or {}
    for role, name in (("sender", src), ("destination", dst)):
        if name in net.nodes and name not in net.model.nodes:
            raise LabFileError(f"{name} cannot be the probe's {role}: {unseen.get(name) or 'it could not be read'}"
                               + (" Probe one of its addresses instead." if role == "destination" else ""))


def trace_hosts(path: str, src: str, dst: str, on_open: Callable[[Network], None] = lambda n: None, **kw):
    from ..trace.run import run_trace
    with open_hosts(path) as net:
        on_open(net)
        probe_ends(net, src, dst)
        return run_trace(net, src, dst, **kw)


def diagnose_hosts(path: str, src: str, dst: str, kw: dict, fix: bool = False,
                   confirm: Callable[[str, list[str]], bool] | None = None,
                   on_open: Callable[[Network], None] = lambda n: None, on_step=lambda s: None):
    """A Diagnosis; with ``fix``, a FixRun whose commands each ran only if ``confirm`` said yes."""
    with open_hosts(path) as net:
        on_open(net)
        probe_ends(net, src, dst)
        if not fix:
            from ..diagnose.run import diagnose
            return diagnose(net, src, dst, **kw)
        from ..diagnose.fixloop import fix_loop
        net.ask_before_changes(confirm)
        return fix_loop(net, src, dst, on_step=on_step, **kw)
