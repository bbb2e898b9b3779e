"""A whole-path check: a WireGuard interface's own datagram went into a WireGuard interface.

A full tunnel (wg-quick's for ``AllowedIPs = 0.0.0.0/0``) sends every packet without the
interface's mark into its own table, whose default route is the interface; the interface marks
its datagrams (FwMark) so that they take the main table instead. Without the mark (``wg
setconf`` or ``wg syncconf`` from a file without FwMark puts it back to off; wg-quick set it
with ``wg set``) the datagram for the peer's endpoint is routed into the tunnel it carries, and
goes no further. WireGuard remembers the way it last reached a peer, so this shows once the
endpoint is set again or the peer roams. The fix gives the interface its mark back.
"""
from __future__ import annotations

from .context import Context
from .verdict import Stop, Verdict


def datagram_into_tunnel(ctx: Context) -> Verdict | None:
    res = ctx.res
    for u in res.hops:
        if u.layer != "underlay" or u.dir != "out" or u.carries is None or not ctx.is_wg(u.node, u.iface):
            continue
        inner = res.hops[u.carries]
        if inner.node != u.node or not ctx.is_wg(inner.node, inner.iface):
            continue
        node, wg = u.node, inner.iface
        live = next((w.fwmark for w in ctx.f(node).wg if w.name == wg), 0)
        n = ctx.lab.nodes.get(node)
        w = n.wireguard.get(wg) if n else None
        mark = w.fwmark if w is not None and ctx.declared(w.stage) else None
        v = Verdict("route-missing", Stop(node, wg, u.role),
                    params={"node": node, "iface": wg, "endpoint": u.dst, "out": u.iface, "mark": mark or live or "-",
                            "dst": inner.dst, "variant": "wg-loop"})
        v.add(node, "capture", "datagram-into-tunnel", summary=u.summary, out=u.iface, endpoint=u.dst)
        v.add(node, "wireguard", "fwmark-now", iface=wg, mark=hex(live) if live else "off")
        rule = next((r for r in (n.rules if n else ()) if r.invert and r.fwmark == mark and ctx.declared(r.stage)), None)
        if rule is not None:
            v.add(node, "route", "rule-unmarked", mark=mark, table=rule.table, iface=wg)
        if mark and live != mark:
            v.fixes(node, ("wg", "set", wg, "fwmark", str(mark)))
        return v
    return None
