"""WireGuard state of a node, read with ``wg show all dump`` inside the node.

The same reader serves kernel WireGuard (netlink) and wireguard-go (its UAPI
socket in the node's own /run/wireguard), because ``wg`` speaks both.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WgPeer:
    public_key: str
    endpoint: str | None
    allowed_ips: list[str]
    latest_handshake: int          # unix time, 0 = never
    rx: int
    tx: int
    keepalive: int | None


@dataclass
class WgIface:
    name: str
    public_key: str
    listen_port: int
    peers: list[WgPeer] = field(default_factory=list)
    fwmark: int = 0                # 0: off


def parse_dump(text: str) -> list[WgIface]:
    ifaces: dict[str, WgIface] = {}
    for line in text.splitlines():
        f = line.split("\t")
        if len(f) == 5:
            # the private key (f[1]) is not kept: it never leaves this parser
            mark = 0 if f[4] == "off" else int(f[4], 0)
            ifaces[f[0]] = WgIface(f[0], f[2], int(f[3]), [], mark)
        elif len(f) == 9 and f[0] in ifaces:
            ifaces[f[0]].peers.append(WgPeer(
                public_key=f[1],
                endpoint=None if f[3] == "(none)" else f[3],
                allowed_ips=[] if f[4] == "(none)" else f[4].split(","),
                latest_handshake=int(f[5]), rx=int(f[6]), tx=int(f[7]),
                keepalive=None if f[8] == "off" else int(f[8])))
    return list(ifaces.values())


def read_wg(node) -> list[WgIface]:
    r = node.run(["wg", "show", "all", "dump"], timeout=5)
    return parse_dump(r.stdout) if r.returncode == 0 else []
