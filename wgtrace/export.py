"""Export what a lab built as wg-quick files, one per WireGuard node, to keep or reuse.

The [Interface] and [Peer] sections come from the kernel's current state (``wg show
dump``); the node's forwarding sysctls and iptables rules from the lab file, up to the
lab's current stage, become PostUp/PostDown lines. wg-quick adds a route for every
AllowedIPs entry itself, so the document's `ip route add … dev wg0` needs no line.
"""
from __future__ import annotations

from pathlib import Path

from .model import Lab
from .node import NodeHandle
from .runtime import LabState
from .wgstate import read_wg


def wg_quick(lab: Lab, state: LabState, node: str) -> str | None:
    h = NodeHandle(state.lab, node, state.wg_impl)
    ifaces = read_wg(h)
    if not ifaces:
        return None
    w = ifaces[0]
    n = lab.nodes[node]
    address = n.wireguard[w.name].address if w.name in n.wireguard else ""
    private = (h.dir / "home" / "private").read_text().strip()
    names = {v: k for k, v in state.keys.items()}
    upto = {s.name for s in lab.stages[1:state.stage + 1]}
    lines = [f"# {node}: {n.description}", "[Interface]", f"Address = {address}",
             f"PrivateKey = {private}", f"ListenPort = {w.listen_port}"]
    for s in n.sysctl:
        if s.stage in upto and s.key.startswith("net.ipv4.ip_forward"):
            lines.append(f"PostUp = sysctl -w {s.key}={s.value}")
    for r in n.iptables:
        if r.stage in upto:
            lines.append(f"PostUp = iptables {r.rule}")
            lines.append(f"PostDown = iptables {r.rule.replace('-A ', '-D ', 1)}")
    for p in w.peers:
        lines += ["", f"[Peer]  # {names.get(p.public_key, 'unknown')}", f"PublicKey = {p.public_key}",
                  f"AllowedIPs = {', '.join(p.allowed_ips)}"]
        # an endpoint learnt from a NATed peer is only valid while that NAT mapping lives
        model_peer = next((mp for mp in n.wireguard.get(w.name).peers if mp.peer == names.get(p.public_key)
                           and mp.endpoint), None) if w.name in n.wireguard else None
        if p.endpoint and model_peer:
            lines.append(f"Endpoint = {p.endpoint}")
        if p.keepalive:
            lines.append(f"PersistentKeepalive = {p.keepalive}")
    return "\n".join(lines) + "\n"


def export_all(lab: Lab, state: LabState, directory: str) -> list[Path]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for node in lab.nodes:
        text = wg_quick(lab, state, node)
        if text:
            path = out / f"{node}-wg0.conf"
            path.write_text(text)
            path.chmod(0o600)
            written.append(path)
    return written
