"""Terminal views for graders: one grade (check), and the matrix of every pair (check --all)."""
from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..texts import say, words
from .verdict_view import verdict_view


def grade_view(g, lang: str) -> Group:
    w = words("view", lang)
    return Group(*[verdict_view(d, lang) for d in g.checks],
                 Text(w["pass"] if g.passed else w["fail"], "bold green" if g.passed else "bold red"))


def check_view(m, lang: str) -> Group:
    """src × dst: "ok", or the cause and the node where the probe stopped."""
    w = words("view", lang)
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    t.add_column("src \\ dst")
    for d in m.dsts:
        t.add_column(d)
    for s in m.srcs:
        cells = []
        for d in m.dsts:
            r = m.result(s, d)
            if r is None:
                cells.append(Text("-", "dim"))
            elif r.ok and r.leak:
                cells.append(Text(f"{w['reachable']} ({say('view.leak-cell', lang, iface=r.leak)})", "yellow"))
            elif r.ok:
                cells.append(Text(w["reachable"], "green"))
            else:
                cells.append(Text(f"{r.cause} @{r.stop or '?'}", "red"))
        t.add_row(s, *cells)
    return Group(t, Text(w["pass"] if m.passed else w["fail"], "bold green" if m.passed else "bold red"))
