"""The values of a wg-quick file's keys, read as wg(8) and wg-quick(8) read them.

Each reader takes the text after ``=`` and returns the value, or raises ``Bad`` with the key of
the sentence that says what is wrong (``wgquick_error.<key>``) and its parameters. Both address
families everywhere, through ``ipaddress.ip_*``. Nothing here resolves a name or runs a program.
"""
from __future__ import annotations

import ipaddress
import re

HOSTNAME_RE = re.compile(r"^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                         r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")
TABLE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class Bad(ValueError):
    def __init__(self, key: str, **params) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def words(value: str) -> list[str]:
    """wg-quick splits Address and DNS on commas and whitespace alike."""
    return [w for w in re.split(r"[,\s]+", value) if w]


def address(item: str) -> str:
    """An interface address; without a prefix it is a single address (/32, /128), as ``ip`` takes it."""
    try:
        return str(ipaddress.ip_interface(item))
    except ValueError:
        raise Bad("bad-address", value=item) from None


def network(item: str) -> tuple[str, bool]:
    """An AllowedIPs entry: (the network, whether host bits were set). wg only warns about host
    bits (the kernel masks them), so that is a note, not an error."""
    ip, _, plen = item.partition("/")
    try:
        if not ip or ("/" in item and not plen.isdigit()):
            raise ValueError
        addr = ipaddress.ip_address(ip)
        n = ipaddress.ip_network(f"{addr}/{plen or addr.max_prefixlen}", strict=False)
    except ValueError:
        raise Bad("bad-network", value=item) from None
    return str(n), n.network_address != addr


def allowed_ips(value: str) -> list[tuple[str, bool]]:
    """wg reads the list with all whitespace removed; an empty entry (``a,,b``, a trailing comma)
    is refused, an empty value means no networks."""
    if not value.strip():
        return []
    out = []
    for item in value.split(","):
        joined = "".join(item.split())
        if not joined:
            raise Bad("empty-network", value=value.strip())
        try:
            out.append(network(joined))
        except Bad:
            if len(item.split()) > 1:
                raise Bad("network-space", value=item.strip()) from None
            raise
    return out


def endpoint(value: str) -> tuple[str, int]:
    """(host, port): ``1.2.3.4:51820``, ``[2001:db8::1]:51820`` or ``vpn.example.com:51820``. A name
    is kept as text: it is never looked up."""
    host, port = "", ""
    if value.startswith("["):
        inner, sep, rest = value[1:].partition("]")
        if sep and rest.startswith(":"):
            host, port = inner, rest[1:]
    else:
        host, _, port = value.rpartition(":")
    if not host or not port:
        raise Bad("endpoint-no-port", value=value)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise Bad("bad-endpoint-port", value=value, port=port)
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        if not HOSTNAME_RE.match(host):
            raise Bad("bad-endpoint-host", value=value, host=host) from None
    return host, int(port)


def port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise Bad("bad-port", value=value)
    return int(value)


def fwmark(value: str) -> int:
    """``off`` is 0; decimal or 0x hexadecimal, at most 32 bits."""
    if value.lower() == "off":
        return 0
    try:
        n = int(value, 16) if value.lower().startswith("0x") and len(value) > 2 else int(value, 10)
        if not value[0].isdigit() or not 0 <= n < 2 ** 32:
            raise ValueError
    except ValueError:
        raise Bad("bad-fwmark", value=value) from None
    return n


def keepalive(value: str) -> int:
    if value.lower() == "off":
        return 0
    if not value.isdigit() or int(value) > 65535:
        raise Bad("bad-keepalive", value=value)
    return int(value)


def mtu(value: str) -> int:
    if not value.isdigit() or not 68 <= int(value) <= 65535:
        raise Bad("bad-mtu", value=value)
    return int(value)


def table(value: str) -> str:
    """``off``, ``auto``, a number, or a name from /etc/iproute2/rt_tables (kept as written)."""
    low = value.lower()
    if low in ("off", "auto", "main"):
        return low
    if value.isdigit() and 0 < int(value) < 2 ** 32:
        return str(int(value))
    if TABLE_NAME_RE.match(value) and not value.isdigit():
        return value
    raise Bad("bad-table", value=value)


def boolean(value: str) -> bool:
    low = value.lower()
    if low not in ("true", "false"):
        raise Bad("bad-bool", value=value)
    return low == "true"


def dns(value: str) -> tuple[list[str], list[str]]:
    """(servers, search domains): wg-quick takes what looks like an address as a server."""
    servers, search = [], []
    for w in words(value):
        (servers if re.match(r"(^[0-9.]+$)|(^.*:.*$)", w) else search).append(w)
    return servers, search
