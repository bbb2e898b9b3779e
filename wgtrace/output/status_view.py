"""Terminal rendering of lab status, in the spirit of ``ip -br addr`` and ``wg show``."""
from __future__ import annotations

from rich.console import Group
from rich.text import Text

from ..lab.status import LabStatus


def _age(now: float, ts: int) -> str:
    if not ts:
        return "never"
    s = int(now - ts)
    return f"{s // 60} min {s % 60} s ago" if s >= 60 else f"{s} s ago"


def status_view(st: LabStatus, lang: str = "en") -> Group:
    lines = [Text.assemble(("lab ", "bold"), (st.lab, "bold cyan"), "  stage ",
                           (f"{st.stage} ({st.stage_name})", "bold"), "  WireGuard: ",
                           (st.wg_impl, "magenta"))]
    for p in st.problems:
        lines.append(Text(f"broken: {p}", "bold red"))
    for n in st.nodes:
        lines.append(Text(""))
        lines.append(Text(n.name, "bold cyan"))
        wg = {w.name: w for w in n.wireguard}
        for i in n.ifaces:
            line = Text.assemble(f"  {i.name:<12} ", (f"{i.state:<5}", "green" if i.state == "up" else "red"),
                                 f" {', '.join(i.addresses) or '-':<18}")
            if i.master:
                line.append(f" port of {i.master}", "dim")
            if i.name in wg:
                line.append(f" wireguard port {wg[i.name].listen_port}", "magenta")
            if i.mtu != 1500 and i.name not in wg:
                line.append(f" mtu {i.mtu}", "yellow")
            lines.append(line)
        for r in n.routes:
            if r.via or r.dst == "default":
                lines.append(Text(f"  route {r.dst}" + (f" via {r.via}" if r.via else "")
                                  + (f" dev {r.dev}" if r.dev else ""), "dim"))
        for q in n.wg_quick:
            lines.append(Text(_wg_quick_line(q, lang), "magenta"))
        for w in n.wireguard:
            for p in w.peers:
                who = n.peer_names.get(p.public_key, p.public_key[:10] + "…")
                hs = _age(st.now, p.latest_handshake)
                lines.append(Text.assemble(
                    f"  {w.name} peer ", (f"{who:<8}", "bold"), " endpoint ",
                    (p.endpoint or "(none)", "yellow"), f"  allowed {','.join(p.allowed_ips) or '(none)'}",
                    "  handshake ", (hs, "red" if hs == "never" else "green")))
    return Group(*lines)


def _wg_quick_line(q, lang: str) -> str:
    from ..texts import say
    parts = [say("wgquick_status.up", lang, iface=q.iface, mtu=q.mtu)]
    if q.fwmark:
        parts.append(say("wgquick_status.fwmark", lang, mark=hex(q.fwmark), rules=len(q.rules)))
    if q.nft_tables:
        parts.append(say("wgquick_status.nft", lang, tables=", ".join(q.nft_tables)))
    if q.dns:
        parts.append(say("wgquick_status.dns", lang, servers=", ".join(q.dns)))
    return "  " + "; ".join(parts)
