"""A lab seen as real hosts are: only some of its nodes in view (``--only a,b,c``).

An operator logs into their own machines, not the ISP's router or the carrier's NAT. To test the
verdicts for what lies between on real kernels, a lab can be diagnosed the same way: the nodes in
view are read with the very snapshot a host over SSH answers (nodes/sshstate.py, run inside each
namespace), their network is described by discovery's own code (what lies between becomes the
unknown middle, as for hosts), and the rest of the lab is not there at all: not captured, not
read, not in the model. Names of nodes out of view still work as destinations (their address, as
the lab file gives it, resolved once).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

from ..errors import LabFileError
from ..network import Network
from ..nodes.sshstate import HostState, parse_snapshot, snapshot_script


def state_of(node) -> HostState:
    """A lab node's state as a host's snapshot reads it (the same script, run in the namespace)."""
    script, mark = snapshot_script(False)
    r = node.run(["sh", "-c", script], timeout=20)
    return parse_snapshot(r.stdout, mark)


def only_names(text: str | Sequence[str], nodes: Sequence[str], what: str,
               groups: dict[str, list[str]] | None = None) -> list[str]:
    """The names ``--only`` gives, checked (an inventory's group names stand for their hosts)."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    names = [m for n in names for m in ((groups or {}).get(n, [n]) if n not in nodes else [n])]
    unknown = [n for n in names if n not in nodes]
    if unknown:
        raise LabFileError(f"--only {','.join(names)}: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} "
                           f"not in {what} (its nodes: {', '.join(nodes)}).")
    if not names:
        raise LabFileError("--only needs the names of the nodes to keep in view, like --only home,bcc,company.")
    return list(dict.fromkeys(names))


def in_view(net: Network, names: Sequence[str]) -> Network:
    """``net`` (a running lab) as if only ``names`` could be seen."""
    from ..model.parse import parse_lab
    from ..trace.run import resolve_dst
    from .discover import OUT_OF_VIEW, discover
    keep = only_names(names, list(net.nodes), f"lab {net.name!r}")
    states = {n: state_of(net.nodes[n]) for n in keep}
    data, _ = discover(net.name, {n: s for n, s in states.items() if s.links}, {n: set() for n in keep},
                       f"lab {net.name}, only {', '.join(keep)} in view", OUT_OF_VIEW)
    try:
        model = dataclasses.replace(parse_lab(data, net.model.path), source=data)
    except LabFileError as e:        # discovery writes only what the checks accept: a bug if not
        raise LabFileError(f"lab {net.name!r} with only {', '.join(keep)} in view did not make a valid model "
                           f"({e.message}).", e.details) from None
    resolved = {}
    for other in net.model.nodes:
        if other not in keep:
            try:
                resolved[other] = resolve_dst(net.model, other)
            except Exception:             # a node without an address: not a destination
                pass
    view = Network(net.name, model, {n: net.nodes[n] for n in keep}, {n: k for n, k in net.keys.items() if n in keep},
                   whole=False, lock=net.lock, outside=True, resolved=resolved, state=net.state,
                   unseen={n: f"{n} could not be read" for n, s in states.items() if not s.links})
    view.refresh = lambda: in_view(net.reopened(), keep)
    return view
