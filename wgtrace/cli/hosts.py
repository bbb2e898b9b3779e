"""``--hosts``: trace, diagnose and status on real machines over SSH, and ``wgtrace discover``.

No root is needed here: everything privileged runs on the hosts (as root, or with ``sudo -n``).
Without ``--fix`` nothing on any host changes; with it, each command is shown and asked for
(``--yes`` for scripts). A host that cannot be reached gets one sentence and the rest go on.
"""
from __future__ import annotations

import shlex
import sys
from typing import Optional

import typer

from ..errors import UsageError
from .common import emit, err, guarded, json_opt, out

HOSTS_HELP = "A hosts file (docs/hosts.md): work on these real machines over SSH instead of a lab."


def hosts_opt(required: bool = False):
    return typer.Option(... if required else None, "--hosts", help=HOSTS_HELP)


def only_opt():
    return typer.Option(None, "--only", help="Keep only these nodes in view (comma-separated): the rest is "
                                             "as if it could not be seen, like machines you cannot log into.")


def warn_unseen(net, said: dict | None = None) -> dict:
    """What of a network cannot be seen (a host that refused us), one line each, before the result;
    ``said``: what was said already (a capture that failed during the probe is said after it)."""
    said = dict(said or {})
    for name, why in sorted(net.unseen.items()):
        if said.get(name) == why:
            continue
        said[name] = why
        err.print(f"[yellow]wgtrace:[/] {why} (going on without it)" if why.startswith(name) else
                  f"[yellow]wgtrace:[/] {name}: {why} (going on without it)", highlight=False, markup=True,
                  soft_wrap=True)
    return said


class Asker:
    """Before a fix runs on a host: show it, ask (``--yes``: don't). A refusal stops the fixes."""

    def __init__(self, yes: bool) -> None:
        self.yes = yes

    def __call__(self, node: str, argv: list[str]) -> bool:
        cmd = shlex.join(argv)
        if self.yes:
            err.print(f"[cyan]{node}#[/] {cmd}", highlight=False, markup=True)
            return True
        if not sys.stdin.isatty():
            err.print(f"not run on {node}: {cmd} (not a terminal to ask: add --yes to apply fixes without asking)",
                      highlight=False, markup=False)
            return False
        return typer.confirm(f"run on {node}: {cmd}", default=False, err=True)


@guarded
def status(hosts: str = hosts_opt(True), as_json: bool = json_opt()):
    """Interfaces, addresses, routes and WireGuard peers of real hosts, read over SSH (as 'lab status')."""
    import dataclasses
    from ..lab.status import network_status
    from ..opener import open_network
    with open_network(hosts=hosts) as net:
        warn_unseen(net)
        seen = dataclasses.replace(net, nodes={n: h for n, h in net.nodes.items() if n in net.model.nodes})
        st = network_status(seen)
    st.stage_name, st.wg_impl, st.complete = "hosts", "as the hosts have it", True
    if hasattr(st, "problems"):
        st.problems = []
    emit(st, as_json)


@guarded
def discover(hosts: str = hosts_opt(True),
             output: Optional[str] = typer.Option(None, "--output", "-o",
                                                  help="Write the lab file here (default: print it)."),
             name: Optional[str] = typer.Option(None, "--name", help="The lab's name (default: from the file names).")):
    """Read real hosts over SSH and write a lab file that rebuilds their network ('wgtrace lab up FILE')."""
    from ..hosts.write import discover_file
    text, notes, unseen = discover_file(hosts, output, name)
    for n, why in sorted(unseen.items()):
        err.print(f"[yellow]wgtrace:[/] {why} (left out)" if why.startswith(n) else
                  f"[yellow]wgtrace:[/] {n}: {why} (left out)", highlight=False, soft_wrap=True)
    if output:
        err.print(f"wrote {output}: {text.count('[nodes.')} nodes, {text.count('[[links]]')} links"
                  + (f", {len(notes)} thing(s) left out (see its comments)" if notes else "")
                  + f"; build it with 'wgtrace lab up {output}'.", highlight=False, soft_wrap=True)
    else:
        out.print(text, highlight=False, markup=False, soft_wrap=True, end="")


def check_hosts_args(hosts: Optional[str], lab: Optional[str]) -> None:
    if hosts and lab:
        raise UsageError("--hosts and --lab name two different networks: give one.")
