"""A whole-path check: the request reached its destination from a source address no machine has.

A node on the way translated the source (an SNAT pinned to an address: Nyr's installer writes
``SNAT --to <the server's address>``) to an address that is none of its own any more (the VPS
moved to another address, a failover address went back): the answer is sent to that address
and finds nobody, so it stops at the router before it, unanswered ARP. The node's connection
tracking shows the translation; the fix takes the rule out (and masquerades when nothing else
would translate).
"""
from __future__ import annotations

from .. import addr
from . import firewall
from .context import Context
from .verdict import Stop, Verdict


def snat_address(text: str) -> str | None:
    """The address an SNAT rule translates to (``--to-source A[-B][:PORT]``, ``--to``)."""
    words = text.split()
    for opt in ("--to-source", "--to"):
        if opt in words[:-1]:
            v = words[words.index(opt) + 1]
            if v.startswith("["):
                return v[1:v.index("]")] if "]" in v else None
            v = v.split("-")[0]
            return v.split(":")[0] if v.count(":") == 1 else v
    return None


def translated_to_nowhere(ctx: Context) -> Verdict | None:
    res = ctx.res
    if not res.reached_dst or res.stop_phase != "reply":
        return None
    arrive = next((h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "in"
                   and h.node == res.dst_node), None)
    if arrive is None or ctx.owner(arrive.src) is not None:
        return None
    src = arrive.src
    for out in (h for h in res.hops if h.role == "request" and h.layer == "inner" and h.dir == "out"):
        f = ctx.f(out.node)
        ct = next((c for c in f.conntrack if addr.same_address(c[3], src) and not addr.same_address(c[0], src)), None)
        if ct is None:
            continue
        mine = [a for link in f.links.values() for a in link.addresses]
        if any(addr.same_address(addr.bare(a), src) for a in mine):
            return None
        rules = [r for r in f.fw.translating(ctx.family) if r.verdict == "snat"
                 and addr.same_address(snat_address(r.text) or "-", src)]
        v = Verdict("nat-missing", Stop(out.node, out.iface, "reply"),
                    params={"node": out.node, "iface": out.iface, "dst_node": arrive.node, "src": src,
                            "orig": ct[0], "variant": "nowhere"})
        v.add(arrive.node, "capture", "arrived", summary=arrive.summary, node=arrive.node, iface=arrive.iface)
        v.add(out.node, "conntrack", "conntrack", o_src=ct[0], o_dst=ct[1], r_src=ct[2], r_dst=ct[3],
              nat=("@", "word.snat"))
        for r in rules:
            v.add(out.node, "nat", "snat-to-nowhere", rule=r.text, address=src)
        if not rules:
            return v
        v.fixes(out.node, *[firewall.undo(r) for r in rules])
        if not [r for r in f.fw.translating(ctx.family) if r not in rules]:
            vpn = next((n for n in ctx.vpn_nets() if addr.in_nets(ct[0], [n])), None) or ctx.covering_net(ct[0])
            v.fixes(out.node, firewall.masquerade(f.fw, ctx.family, vpn, out.iface))
        return v
    return None
