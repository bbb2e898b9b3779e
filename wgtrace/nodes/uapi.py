"""WireGuard state read straight from wireguard-go's control socket (the UAPI ``get=1``), in
process: what ``wg show all dump`` prints, without starting a program in the node.

The interface's public key is not in the UAPI answer, only its private key: the public key is
computed here (X25519, RFC 7748) and the private key is dropped at once, never stored.
"""
from __future__ import annotations

import base64
import socket
from pathlib import Path

from .wgstate import WgIface, WgPeer

P = 2 ** 255 - 19
A24 = 121665


def x25519_base(scalar: bytes) -> bytes:
    """The X25519 public key of a private key (the Montgomery ladder of RFC 7748, section 5)."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    n = int.from_bytes(k, "little")
    x1, x2, z2, x3, z3, swap = 9, 1, 0, 9, 1, 0
    for t in range(254, -1, -1):
        bit = (n >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3, z3 = (da + cb) ** 2 % P, x1 * (da - cb) ** 2 % P
        x2, z2 = aa * bb % P, e * (aa + A24 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def _b64(hexkey: str) -> str:
    return base64.b64encode(bytes.fromhex(hexkey)).decode()


def read_uapi(path: Path, timeout: float = 2.0, pubkey: bool = True) -> WgIface | None:
    """One interface's state from its UAPI socket; None if nobody answers there. ``pubkey``:
    compute the interface's public key (1 ms; not needed to watch handshakes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
        s.sendall(b"get=1\n\n")
        data = b""
        while not data.endswith(b"\n\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        s.close()
    w = WgIface(path.stem, "", 0)
    peer: WgPeer | None = None
    sec = 0
    for line in data.decode(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key == "private_key":
            if pubkey:
                w.public_key = base64.b64encode(x25519_base(bytes.fromhex(value))).decode()
        elif key == "listen_port":
            w.listen_port = int(value)
        elif key == "fwmark":
            w.fwmark = int(value)
        elif key == "public_key":
            peer = WgPeer(_b64(value), None, [], 0, 0, 0, None)
            w.peers.append(peer)
        elif peer is None:
            continue
        elif key == "endpoint":
            peer.endpoint = value
        elif key == "allowed_ip":
            peer.allowed_ips.append(value)
        elif key == "last_handshake_time_sec":
            sec = int(value)
            peer.latest_handshake = sec
        elif key == "rx_bytes":
            peer.rx = int(value)
        elif key == "tx_bytes":
            peer.tx = int(value)
        elif key == "persistent_keepalive_interval":
            peer.keepalive = int(value) or None
        elif key == "errno" and value != "0":
            return None
    return w
