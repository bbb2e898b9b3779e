"""Interfaces wg-quick brings up in a lab's nodes: their files, written before the stages run.

Each file is what wg-quick reads on the machine the node stands for (model/wgquick.py), with
the node's fresh key and its peers' real public keys, and nothing wg-quick would run or hand
on: no PreUp/PostUp/PreDown/PostDown (the lab file holds what they did, as data), no DNS
(resolvconf: shown, never applied), no SaveConfig. It goes into the node's own home
(``/root/wg0.conf`` in the node, mode 0600), so ``wg-quick up`` there never reads the host's
/etc/wireguard, and goes away with the node. Where the kernel has no WireGuard, wg-quick falls
back to wireguard-go by itself (``WG_QUICK_USERSPACE_IMPLEMENTATION``: the node's shim, which
runs it as the node's own user, as the ``ip`` shim does).
"""
from __future__ import annotations

import os

from ..errors import MissingTool
from ..model.commands import endpoint_of, wg_quick_file
from ..model.lab import Lab, Node, WgInterface
from ..model.wgquick import file_peers


def config_text(lab: Lab, node: Node, w: WgInterface, private: str, keys: dict[str, str]) -> str:
    q = w.quick
    lines = [f"# {node.name}:{w.name}, written by wgtrace for wg-quick (lab {lab.name})", "[Interface]",
             f"PrivateKey = {private}", f"Address = {', '.join(w.addresses)}"]
    if w.listen_port:
        lines.append(f"ListenPort = {w.listen_port}")
    if q.fwmark:
        lines.append(f"FwMark = {q.fwmark}")
    if w.mtu:
        lines.append(f"MTU = {w.mtu}")
    if q.table != "auto":
        lines.append(f"Table = {q.table}")
    for p in file_peers(w):
        lines += ["", f"[Peer]  # {p.peer}", f"PublicKey = {keys[p.peer]}"]
        if p.allowed_ips:
            lines.append(f"AllowedIPs = {', '.join(p.allowed_ips)}")
        if p.endpoint:
            lines.append(f"Endpoint = {endpoint_of(lab, p.endpoint)}")
        if p.keepalive:
            lines.append(f"PersistentKeepalive = {p.keepalive}")
    return "\n".join(lines) + "\n"


def has_wg_quick(lab: Lab) -> bool:
    return any(w.quick for n in lab.nodes.values() for w in n.wireguard.values())


def write_wg_quick_files(lab: Lab, nodes: dict, keys: dict[str, str]) -> None:
    """Each wg-quick interface's file in its node's home (``nodes``: name -> NetnsNode)."""
    if not has_wg_quick(lab):
        return
    from .preflight import which
    if not which("wg-quick") or not which("bash"):
        raise MissingTool("this lab brings interfaces up with wg-quick, which is missing: install with "
                          "'apt-get install --no-install-recommends wireguard-tools'.")
    for name, n in lab.nodes.items():
        for w in n.wireguard.values():
            if not w.quick:
                continue
            home = nodes[name].home_dir
            private = (home / "private").read_text().strip()
            path = home / os.path.basename(wg_quick_file(w.name))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(config_text(lab, n, w, private, keys))
