"""wg-quick files: a node's WireGuard interface as it is now, to keep or to reuse on a real machine.

The [Interface] and [Peer] sections come from the kernel's state; the node's forwarding sysctls
and iptables and ip6tables rules from the lab file, up to the lab's current stage, become
PostUp/PostDown lines. wg-quick adds a route for every AllowedIPs entry itself, so the document's
`ip route add … dev wg0` needs no line.
"""
from __future__ import annotations

import shlex

from ..nodes.wgstate import WgIface
from ..model.lab import Node


def wg_quick(node: Node, w: WgIface, private: str, names: dict[str, str], upto: set[str]) -> str:
    """``names``: public key -> node name; ``upto``: the stages applied so far."""
    address = ", ".join(node.wireguard[w.name].addresses) if w.name in node.wireguard else ""
    lines = [f"# {node.name}: {node.description}", "[Interface]", f"Address = {address}",
             f"PrivateKey = {private}", f"ListenPort = {w.listen_port}"]
    def applied(stage) -> bool:          # the base (no stage) is always there
        return stage is None or stage in upto
    forwarding = {}                       # the last value of each forwarding switch
    for s in node.sysctl:
        if applied(s.stage) and (s.key.startswith("net.ipv4.ip_forward") or
                                 s.key.startswith("net.ipv6.conf.") and s.key.endswith(".forwarding")):
            forwarding[s.key] = s.value
    lines += [f"PostUp = sysctl -w {k}={v}" for k, v in forwarding.items() if v != "0"]
    for r in node.iptables:
        if applied(r.stage):
            args = list(r.args)
            lines.append(f"PostUp = {r.program} {shlex.join(args)}")
            i = next((k for k, a in enumerate(args) if a in ("-A", "-I")), None)
            if i is not None:
                undo = args[:i] + ["-D"] + args[i + 1:]
                if args[i] == "-I" and len(undo) > i + 2 and undo[i + 2].isdigit():
                    del undo[i + 2]            # "-I CHAIN 1": -D takes no position with a rule
                lines.append(f"PostDown = {r.program} {shlex.join(undo)}")
    declared = {p.peer for p in node.wireguard[w.name].peers if p.endpoint} if w.name in node.wireguard else set()
    for p in w.peers:
        who = names.get(p.public_key, "unknown")
        lines += ["", f"[Peer]  # {who}", f"PublicKey = {p.public_key}", f"AllowedIPs = {', '.join(p.allowed_ips)}"]
        # an endpoint learnt from a NATed peer is only valid while that NAT mapping lives
        if p.endpoint and who in declared:
            lines.append(f"Endpoint = {p.endpoint}")
        if p.keepalive:
            lines.append(f"PersistentKeepalive = {p.keepalive}")
    return "\n".join(lines) + "\n"
