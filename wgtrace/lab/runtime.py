"""Where a running lab lives on the machine, and the record of what it made.

Naming scheme (the lab's name is in every name, so labs run side by side):
  network namespace   wgt-<lab>-<node>           (/run/netns/...)
  the node's init     pid 1 of the node's PID namespace, holding its mount and UTS namespaces
                      too; its environment carries WGTRACE_LAB=<lab> (state.json: pid, inode)
  lab directory       /run/wgtrace/<lab>/        state.json: what was made, by whom, at what stage
  node directories    /run/wgtrace/<lab>/<node>/run   the node's own /run (wireguard sockets, sshd)
                      /run/wgtrace/<lab>/<node>/root  the node's own /root (./private, ./public)
The state file is written *before* each thing is made, so a crashed ``lab up`` can be undone
(an init is recorded just after it is made: until then it is found in its network namespace).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

RUN_ROOT = Path(os.environ.get("WGTRACE_RUN_DIR", "/run/wgtrace"))
NETNS_DIR = Path("/run/netns")


def netns_name(lab: str, node: str) -> str:
    return f"wgt-{lab}-{node}"


def lab_dir(lab: str) -> Path:
    return RUN_ROOT / lab


def node_dir(lab: str, node: str) -> Path:
    return RUN_ROOT / lab / node


@dataclass
class LabState:
    lab: str
    file: str
    pid: int
    wg_impl: str = ""                 # "kernel" or "wireguard-go"
    stage: int = -1                   # last stage fully applied
    stage_name: str = ""
    complete: bool = False            # lab up finished
    netns: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)   # node -> public key
    started: float = 0.0
    params: dict[str, int] = field(default_factory=dict)  # the lab file's parameters it was built with
    wg_users: bool = False            # wireguard-go runs as a user of each node's own (wg_uid)
    inits: dict[str, list[int]] = field(default_factory=dict)  # node -> [pid, PID namespace inode]

    def node(self, name: str):
        """The node ``name`` of this lab (a namespace on this machine)."""
        from ..nodes.netns import NetnsNode
        init = self.inits.get(name)
        return NetnsNode(str(NETNS_DIR / netns_name(self.lab, name)), node_dir(self.lab, name), name,
                         self.lab, self.wg_impl, wg_uid(self.lab, name) if self.wg_users else None,
                         tuple(init) if init else None)

    def save(self) -> None:
        path = lab_dir(self.lab) / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)


def load_state(lab: str) -> LabState | None:
    try:
        data = json.loads((lab_dir(lab) / "state.json").read_text())
    except (OSError, ValueError):
        return None
    try:
        return LabState(**data)
    except TypeError:          # a state file of another version: no usable state
        return None


def running_labs() -> list[str]:
    """Labs with a directory or a namespace on this machine, complete or not."""
    names = set()
    if RUN_ROOT.is_dir():
        names |= {p.name for p in RUN_ROOT.iterdir() if p.is_dir()}
    return sorted(names)


WG_UID_BASE = 1_900_000_000           # far above any real or container user


def wg_uid(lab: str, node: str) -> int:
    """The user a node's wireguard-go runs as: one per node, from its name (no passwd entry is
    needed to run as a user). Two nodes that hash alike only share an inotify budget."""
    import zlib
    return WG_UID_BASE + zlib.crc32(f"{lab}/{node}".encode()) % 100_000_000


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
