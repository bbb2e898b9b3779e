"""The few netlink requests that build a lab's cables, without a netlink library.

Building a lab needs five requests: make a veth pair (its peer born in another namespace),
make a bridge, put a port in it, bring a link up, add an address. pyroute2 does all of that
and more, but importing it costs 0.1 s, a quarter of building the seed lab; these requests
are small and fixed. Reading state (routes, neighbours, conntrack) still goes through pyroute2.
Open a ``Rtnl`` inside the node's namespace (the socket stays there).
"""
from __future__ import annotations

import os
import socket
import struct

RTM_NEWLINK, RTM_NEWADDR = 16, 20
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_NODAD = 0x02
IFF_UP = 1


def _attr(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


def _name(name: str) -> bytes:
    return _attr(IFLA_IFNAME, name.encode() + b"\0")


class Rtnl:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)     # NETLINK_ROUTE
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, kind: int, flags: int, body: bytes) -> None:
        self.seq += 1
        msg = struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0) + body
        self.sock.send(msg)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, mtype, _, seq, _ = struct.unpack_from("=IHHII", data, off)
                if mtype == NLMSG_ERROR and seq == self.seq:
                    err = struct.unpack_from("=i", data, off + 16)[0]
                    if err:
                        raise OSError(-err, os.strerror(-err))
                    return
                off += max(length, 16)

    def veth(self, name: str, peer: str, peer_netns_fd: int) -> None:
        """A veth pair: ``name`` here, ``peer`` in the namespace behind ``peer_netns_fd``."""
        peer_info = _ifinfo() + _name(peer) + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
        info = _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info))
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, _ifinfo() + _name(name) + _attr(IFLA_LINKINFO, info))

    def bridge(self, name: str) -> None:
        self._request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                      _ifinfo() + _name(name) + _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"bridge")))

    def set(self, name: str, up: bool = False, master: str | None = None) -> None:
        """Bring ``name`` up and/or make it a port of the bridge ``master``."""
        attrs = _name(name)
        if master is not None:
            attrs += _attr(IFLA_MASTER, struct.pack("=I", socket.if_nametoindex(master)))
        self._request(RTM_NEWLINK, 0, _ifinfo(0, IFF_UP if up else 0, IFF_UP if up else 0) + attrs)

    def address(self, name: str, cidr: str) -> None:
        """Add an address of either family; IPv6 without duplicate-address detection (``nodad``):
        a lab's addresses are unique by construction, and detection would hold it for a second."""
        ip, plen = cidr.split("/")
        fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
        raw = socket.inet_pton(fam, ip)
        flags = IFA_F_NODAD if fam == socket.AF_INET6 else 0
        body = struct.pack("=BBBBI", fam, int(plen), flags, 0, socket.if_nametoindex(name))
        attrs = _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS, raw)
        if flags:
            attrs += _attr(IFA_FLAGS, struct.pack("=I", flags))
        self._request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body + attrs)
