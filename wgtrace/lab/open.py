"""Open a running lab: find it, check it is whole, and hand it out as a ``Network``.

A lab's nodes are namespaces on this machine. Everything downstream (trace, diagnose, status,
the guided mode) receives the ``Network`` (wgtrace/network.py) and does not know what its nodes
are made of. Callers open it with ``network.open_network(lab=…)``.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import LabStateError
from ..model.lab import Lab
from ..network import Network
from .runtime import LabState, lab_dir, load_state, pid_alive, running_labs


def require_lab(lab: str | None) -> LabState:
    """The state of a running lab; ``None`` picks the only lab that is up."""
    if lab is None:
        labs = running_labs()
        if not labs:
            raise LabStateError("no lab is up: start one with 'wgtrace lab up'.")
        if len(labs) > 1:
            raise LabStateError(f"several labs are up ({', '.join(labs)}): name one with --lab.")
        lab = labs[0]
    st = load_state(lab)
    if st is None:
        raise LabStateError(f"lab {lab!r} is not up: start it with 'wgtrace lab up' "
                            f"(add --name {lab} to run a lab file under that name).")
    if not st.complete:
        if pid_alive(st.pid):
            raise LabStateError(f"lab {lab!r} is still being built.")
        raise LabStateError(f"lab {lab!r} was left half-built by a crashed run: "
                            f"run 'wgtrace lab down {lab}'.")
    return st


def model_of(state: LabState) -> Lab:
    """The lab file a running lab was built from, under the name it runs as."""
    from ..model.labfile import load_lab
    return load_lab(state.file, rename=state.lab, params={k: str(v) for k, v in state.params.items()})


def missing_nodes(st: LabState) -> list[str]:
    """Nodes whose namespace is gone (removed by hand, or the machine rebooted), or whose init
    is (killed, and the kernel with it every process of the node)."""
    import os
    nsfs = os.stat("/proc/self/ns/net").st_dev
    gone = []
    for n in st.nodes:
        node = st.node(n)
        try:
            # a file that is no longer a namespace, or a namespace whose node has stopped
            if os.stat(node.netns_path).st_dev != nsfs or not node.alive():
                gone.append(n)
        except OSError:
            gone.append(n)
    return gone


def open_lab(lab: str | None) -> Network:
    """The running lab as a Network (the caller closes it: use ``network.open_network``)."""
    from .preflight import require_root
    require_root()                    # a lab's namespaces are root's to enter
    st = require_lab(lab)
    gone = missing_nodes(st)
    if gone:
        raise LabStateError(f"lab {st.lab!r} is broken: node {', '.join(gone[:3])}"
                            f"{' and more' if len(gone) > 3 else ''} is gone (its namespace or its init); "
                            f"run 'wgtrace lab down {st.lab}' and bring it up again.")
    return Network(st.lab, model_of(st), {n: st.node(n) for n in st.nodes}, dict(st.keys), st.stage,
                   whole=True, lock=lab_dir(st.lab) / "probe.lock", refresh=lambda: open_lab(st.lab), state=st)


def model_and_keys(lab: str, running: str | None = None) -> tuple[Lab, dict[str, str] | None]:
    """A lab file's model and, when a lab built from it is up, that lab's real public keys:
    ``running`` names the lab; else a lab up under the same name, or the only one up from this file."""
    from ..model.labfile import find_lab, load_lab
    if running:
        st = require_lab(running)
        return model_of(st), dict(st.keys)
    st = load_state(lab) if "/" not in lab and not lab.endswith(".toml") else None
    if st is None or not st.complete:
        path = str(find_lab(lab).resolve())
        ups = [s for s in (load_state(n) for n in running_labs())
               if s and s.complete and str(Path(s.file).resolve()) == path]
        st = ups[0] if len(ups) == 1 else None
    if st is not None and st.complete:
        return model_of(st), dict(st.keys)
    return load_lab(lab), None
