"""Terminal view of a trace: tcpdump-like lines in time order, grouped by node."""
from __future__ import annotations

import re

from rich.console import Group
from rich.text import Text

from ..texts import say, words
from ..trace.path import TraceResult

ROLE_STYLE = {"request": "cyan", "reply": "green", "error": "red", "redirect": "yellow"}


def _short(summary: str) -> str:
    """'IP a.p > b.q: UDP, length 128 (WireGuard data, receiver 0x.., counter 6) carrying x > y'
    becomes 'UDP a.p > b.q  WireGuard data #6 [x > y]'."""
    m = re.match(r"IP (\S+) > (\S+): UDP, length \d+ \(WireGuard data, receiver \S+, counter (\d+)\)"
                 r"(?: carrying (.*))?", summary)
    if not m:
        return summary
    return f"UDP {m[1]} > {m[2]}  WireGuard data #{m[3]}" + (f" [{m[4]}]" if m[4] else "")


def trace_view(res: TraceResult, lang: str = "en", underlay: bool = True) -> Group:
    w = words("view", lang)
    p = res.probe
    what = {"icmp": "ICMP echo", "tcp": f"TCP SYN :{p['port']}", "udp": f"UDP :{p['port']}"}[p["kind"]]
    lines = [Text.assemble((f"{w['trace']} ", "bold"), (res.src, "bold cyan"), " -> ", (res.dst, "bold cyan"),
                           f" ({p['dst_ip']}), {what}" + (f", {p['size']} bytes DF" if p.get("size") else ""))]
    if res.route:
        r = res.route
        lines.append(Text("  " + say("view.route-to", lang, src=res.src, dst=p["dst_ip"], via=r.get("via") or w["direct"],
                                     dev=r.get("dev"), srcip=r.get("src")), "dim"))
    last_node = None
    for h in res.hops:
        if h.layer == "underlay" and not underlay:
            continue
        if h.node != last_node:
            lines.append(Text(h.node, "bold"))
            last_node = h.node
        arrow = "->" if h.dir == "out" else "<-"
        if h.layer == "underlay":
            lines.append(Text(f"  {h.t_ms:8.3f} ms  {h.iface:<11} {arrow}  {_short(h.summary)}", "dim"))
        else:
            lines.append(Text.assemble(f"  {h.t_ms:8.3f} ms  {h.iface:<11} {arrow}  ",
                                       (h.summary, ROLE_STYLE.get(h.role, ""))))
    for h in res.redirects:
        lines.append(Text("  " + say("view.redirect-note", lang, node=h.node, summary=h.summary), "yellow"))
    if res.handshakes and not res.reachable:
        lines.append(Text("  " + say("view.handshake-note", lang, n=len(res.handshakes)), "yellow"))
    lines.append(Text(""))
    if res.reachable:
        lines.append(Text.assemble((f"{w['reachable']}  ", "bold green"), res.story_text(lang)))
        lines.append(Text(f"  {w['request']}: {res.inner_path('request')}", "dim"))
        if res.inner_path("reply"):
            lines.append(Text(f"  {w['reply']}:   {res.inner_path('reply')}", "dim"))
    else:
        lines.append(Text.assemble((f"{w['stopped']}  ", "bold red"), res.story_text(lang)))
    return Group(*lines)
