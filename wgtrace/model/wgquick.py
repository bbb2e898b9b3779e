"""Interfaces wg-quick brings up: their lab-file keys, and what wg-quick makes around them.

``wg_quick = true`` on a WireGuard interface means the lab writes a wg-quick file for it (its
addresses, port, peers and the node's fresh key; ``mtu``, ``table``, ``fwmark`` as given) and runs
``wg-quick up`` in the node, as the machine it stands for does. ``dns`` is kept and shown, never
applied: wg-quick would hand it to resolvconf, and a lab node has no resolver of its own.

wg-quick then makes, from the peers' AllowedIPs (as wg-quick(8) does, most specific first): a
route into the interface for each network no route on it covers yet; with ``Table = N`` every
one in table N; with ``off`` none; for a ``/0`` of either family (a full tunnel, ``Table =
auto``) the fwmark (51820 unless given), the default route in the table of that number, the
rules ``not fwmark M table M`` and ``table main suppress_prefixlength 0``, for IPv4
``src_valid_mark``, and an nft table against spoofed packets. The model lists the routes,
rules and the sysctl as items ``made_by`` the interface: the diagnosis and the stage checks see
them as intended state, and nobody types them.
"""
from __future__ import annotations

import ipaddress
import re

from .fields import Errors, integer
from .lab import IpRule, Route, Sysctl, WgInterface, WgQuick

FULL_TUNNEL_MARK = 51820              # wg-quick's first choice of fwmark and table
DNS_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
KEYS = {"wg_quick", "dns", "table", "mtu"}


def parse_quick(errs: Errors, wk: str, w: dict, fwmark: int | None) -> tuple[WgQuick | None, int | None]:
    """(how wg-quick brings it up or None, the interface's MTU) from an interface table."""
    mtu = integer(errs, f"{wk}.mtu", w["mtu"], 68, 65535, "an MTU") if "mtu" in w else None
    on = w.get("wg_quick", False)
    if not isinstance(on, bool):
        errs.add(f"{wk}.wg_quick", "is true or false")
        on = False
    if not on:
        for k in ("dns", "table"):
            if k in w:
                errs.add(f"{wk}.{k}", "only an interface wg-quick brings up has it (wg_quick = true)")
        return None, mtu
    table = w.get("table", "auto")
    if isinstance(table, bool) or not (table in ("auto", "off", "main") or (type(table) is int and 0 < table < 2 ** 31)):
        errs.add(f"{wk}.table", f"{table!r} is not \"auto\", \"off\", \"main\" or a table number")
        table = "auto"
    dns = w.get("dns", [])
    if not isinstance(dns, list) or not all(isinstance(d, str) for d in dns):
        errs.add(f"{wk}.dns", 'must be a list like ["1.1.1.1", "example.lan"]')
        dns = []
    good = []
    for j, d in enumerate(dns):
        if _is_ip(d) or DNS_NAME_RE.match(d):
            good.append(d)
        else:
            errs.add(f"{wk}.dns[{j}]", f"{d!r} is neither a resolver's address nor a search domain")
    return WgQuick(str(table), fwmark, tuple(good)), mtu


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def file_peers(w: WgInterface):
    """The peers in the interface's wg-quick file: those that come with it (a peer added at a later
    stage is typed with ``wg set``, and wg-quick makes no route for it)."""
    return [p for p in w.peers if p.stage == w.stage]


def made_items(w: WgInterface) -> tuple[list[Route], list[IpRule], list[Sysctl], int | None]:
    """(routes, rules, sysctls, fwmark) as wg-quick makes them for ``w`` when it comes up."""
    q = w.quick
    if q is None or q.table == "off":
        return [], [], [], w.fwmark
    nets = sorted({ipaddress.ip_network(n) for p in file_peers(w) for n in p.allowed_ips},
                  key=lambda n: (-n.prefixlen, n.version, n))
    covered = [ipaddress.ip_interface(a).network for a in w.addresses]
    routes, rules, sysctls, mark = [], [], [], w.fwmark
    made = {"stage": w.stage, "made_by": w.name}
    for n in nets:
        dst = "default" if n.prefixlen == 0 else str(n)
        if q.table not in ("auto",):
            table = None if q.table == "main" else int(q.table)
            routes.append(Route(dst, None, w.name, table=table, family=n.version, **made))
        elif n.prefixlen == 0:
            mark = mark or FULL_TUNNEL_MARK
            routes.append(Route("default", None, w.name, table=mark, family=n.version, **made))
            rules += [IpRule(str(mark), mark, True, family=n.version, **made),
                      IpRule("main", suppress_prefixlength=0, family=n.version, **made)]
            if n.version == 4:
                sysctls.append(Sysctl("net.ipv4.conf.all.src_valid_mark", "1", **made))
        elif not any(c.version == n.version and n.subnet_of(c) for c in covered):
            routes.append(Route(dst, None, w.name, family=n.version, **made))
            covered.append(n)
    return routes, rules, sysctls, mark
