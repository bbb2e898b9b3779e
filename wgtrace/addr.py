"""Addresses and networks of both families, in one place.

Everything in wgtrace that parses an address, tests membership or picks the most specific
route goes through here, on ``ipaddress.ip_address``/``ip_network``: IPv4 and IPv6 are a
parameter, never a second code path. Networks are CIDR strings as the kernel and the lab file
write them; a route's destination may be ``"default"``, which means ``0.0.0.0/0`` or ``::/0``
by the family of what is being routed. An address never matches a network of the other family.
"""
from __future__ import annotations

import ipaddress
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULTS = {4: "0.0.0.0/0", 6: "::/0"}
HOST_LEN = {4: 32, 6: 128}


def ip(text) -> Address | None:
    """The address in ``text`` (a bare address, or the address part of ``a/len``), None if none."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return ipaddress.ip_address(text.split("/", 1)[0].strip("[]"))
    except ValueError:
        return None


def family(text) -> int | None:
    """4 or 6 for an address or network, None for anything else (``"default"`` has none)."""
    a = ip(text)
    return a.version if a else None


def net(text, fam: int | None = None) -> Network | None:
    """The network ``text`` names (host bits allowed: ``10.0.0.1/24`` is ``10.0.0.0/24``); a bare
    address is its host network; ``"default"`` is the default network of ``fam`` (4 if not given)."""
    if text == "default":
        return ipaddress.ip_network(DEFAULTS[fam or 4])
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def bare(cidr: str) -> str:
    """The address part of ``a/len``."""
    return cidr.split("/", 1)[0]


def prefixlen(cidr: str, fam: int | None = None) -> int:
    n = net(cidr, fam)
    return n.prefixlen if n else -1


def iface_net(cidr: str) -> str:
    """The network an interface address sits on: ``10.0.0.1/24`` -> ``10.0.0.0/24``."""
    return str(ipaddress.ip_interface(cidr).network)


def host_net(address: str) -> str:
    """The single-address network: ``/32`` or ``/128``."""
    a = ip(address)
    return f"{a}/{HOST_LEN[a.version]}" if a else address


def default_net(fam: int) -> str:
    return DEFAULTS[fam]


def is_default(cidr: str) -> bool:
    """Is this the whole address space of a family (``default``, ``0.0.0.0/0``, ``::/0``)?"""
    return cidr == "default" or prefixlen(cidr) == 0


def is_link_local(address: str) -> bool:
    a = ip(address)
    return bool(a and a.is_link_local)


def is_loopback(address: str) -> bool:
    a = ip(address)
    return bool(a and a.is_loopback)


def in_net(address, cidr: str) -> bool:
    """Is ``address`` inside ``cidr`` (``"default"``: of its own family)? Never across families."""
    a = address if isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else ip(address)
    if a is None:
        return False
    n = net(cidr, a.version)
    return n is not None and n.version == a.version and a in n


def in_nets(address, nets: Iterable[str]) -> bool:
    return any(in_net(address, n) for n in nets)


def of_family(items: Iterable[str], fam: int | None) -> list[str]:
    """The addresses or networks of one family (all of them when ``fam`` is None)."""
    return [x for x in items if fam is None or family(x) == fam]


def longest(address, items: Iterable[T], key: Callable[[T], str] = lambda x: x) -> T | None:
    """Longest-prefix match: of ``items`` whose ``key`` (a CIDR or ``"default"``) holds
    ``address``, the most specific one (the first of equals). The one match in wgtrace."""
    a = ip(address) if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)) else address
    if a is None:
        return None
    best, best_len = None, -1
    for item in items:
        n = net(key(item), a.version)
        if n is not None and n.version == a.version and a in n and n.prefixlen > best_len:
            best, best_len = item, n.prefixlen
    return best


def narrowest(address, nets: Iterable[str]) -> str | None:
    """The most specific of ``nets`` that holds ``address``, as written."""
    return longest(address, list(nets))


def normal(cidr: str) -> str:
    """A network written as the kernel writes it (host bits cleared, IPv6 compressed)."""
    n = net(cidr)
    return str(n) if n else cidr


def covers(outer: str, inner: str) -> bool:
    """Does network ``outer`` hold all of ``inner`` (same family)?"""
    a, b = net(outer), net(inner)
    return bool(a and b and a.version == b.version and b.subnet_of(a))


def same_address(a: str, b: str) -> bool:
    x, y = ip(a), ip(b)
    return x is not None and x == y


def host_of(endpoint: str) -> str:
    """The address part of a WireGuard endpoint: ``1.2.3.4:51820`` or ``[2001:db8::1]:51820``."""
    h = endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint
    return h[1:-1] if h.startswith("[") and h.endswith("]") else h


def port_of(endpoint: str) -> int | None:
    tail = endpoint.rsplit(":", 1)[1] if ":" in endpoint else ""
    return int(tail) if tail.isdigit() else None


def endpoint(address: str, port: int) -> str:
    """``addr:port``, with brackets around an IPv6 address as ``wg`` writes it."""
    return f"[{address}]:{port}" if family(address) == 6 else f"{address}:{port}"
