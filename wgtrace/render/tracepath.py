"""Terminal rendering of a trace: tcpdump-like lines in time order, grouped by node."""
from __future__ import annotations

import re

from rich.console import Group
from rich.text import Text

from ..path import TraceResult

ROLE_STYLE = {"request": "cyan", "reply": "green", "error": "red", "redirect": "yellow"}


def _short(summary: str) -> str:
    """'IP a.p > b.q: UDP, length 128 (WireGuard data, receiver 0x.., counter 6) carrying x > y'
    becomes 'UDP a.p > b.q  WireGuard data #6 [x > y]'."""
    m = re.match(r"IP (\S+) > (\S+): UDP, length \d+ \(WireGuard data, receiver \S+, counter (\d+)\)"
                 r"(?: carrying (.*))?", summary)
    if not m:
        return summary
    return f"UDP {m[1]} > {m[2]}  WireGuard data #{m[3]}" + (f" [{m[4]}]" if m[4] else "")


def trace_view(res: TraceResult, underlay: bool = True) -> Group:
    p = res.probe
    what = {"icmp": "ICMP echo", "tcp": f"TCP SYN :{p['port']}", "udp": f"UDP :{p['port']}"}[p["kind"]]
    lines = [Text.assemble(("trace ", "bold"), (res.src, "bold cyan"), " -> ", (res.dst, "bold cyan"),
                           f" ({p['dst_ip']}), {what}" + (f", {p['size']} bytes DF" if p.get("size") else ""))]
    if res.route:
        r = res.route
        lines.append(Text(f"  {res.src}: route to {p['dst_ip']} via {r.get('via') or 'direct'} "
                          f"dev {r.get('dev')} src {r.get('src')}", "dim"))
    last_node = None
    for h in res.hops:
        if h.layer == "underlay" and not underlay:
            continue
        if h.node != last_node:
            lines.append(Text(h.node, "bold"))
            last_node = h.node
        style = ROLE_STYLE.get(h.role, "")
        arrow = "->" if h.dir == "out" else "<-"
        if h.layer == "underlay":
            lines.append(Text(f"  {h.t_ms:8.3f} ms  {h.iface:<11} {arrow}  {_short(h.summary)}", "dim"))
        else:
            lines.append(Text.assemble(f"  {h.t_ms:8.3f} ms  {h.iface:<11} {arrow}  ", (h.summary, style)))
    for h in res.redirects:
        lines.append(Text(f"  note: {h.node} sent an ICMP redirect ({h.summary}); not an answer", "yellow"))
    if res.handshakes and not res.reachable:
        lines.append(Text(f"  note: {len(res.handshakes)} WireGuard handshake message(s) seen during the trace",
                          "yellow"))
    lines.append(Text(""))
    if res.reachable:
        lines.append(Text.assemble(("reachable  ", "bold green"), res.story))
        lines.append(Text(f"  request: {res.inner_path('request')}", "dim"))
        if res.inner_path("reply"):
            lines.append(Text(f"  reply:   {res.inner_path('reply')}", "dim"))
    else:
        lines.append(Text.assemble(("stopped  ", "bold red"), res.story))
    return Group(*lines)
