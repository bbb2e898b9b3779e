"""An SVG picture of a lab: nodes laid out from the probe's source outward, cables as lines,
WireGuard tunnels dashed, the probe's path in green and the node where it stopped in red.
Each node's box carries ``data-node`` and each cable ``data-link`` (its two nodes), so a page can find them."""
from __future__ import annotations

from html import escape

from ..model.lab import Lab


def _layout(lab: Lab, root: str) -> dict[str, tuple[int, int]]:
    adj: dict[str, list[str]] = {n: [] for n in lab.nodes}
    for l in lab.links:
        adj[l.a.node].append(l.b.node)
        adj[l.b.node].append(l.a.node)
    depth = {root: 0}
    order = [root]
    for n in order:
        for m in adj[n]:
            if m not in depth:
                depth[m] = depth[n] + 1
                order.append(m)
    for n in lab.nodes:                       # unconnected nodes go last
        depth.setdefault(n, max(depth.values()) + 1)
    cols: dict[int, list[str]] = {}
    for n in sorted(lab.nodes, key=lambda n: (depth[n], list(lab.nodes).index(n))):
        cols.setdefault(depth[n], []).append(n)
    pos = {}
    for d, names in cols.items():
        for i, n in enumerate(names):
            pos[n] = (70 + d * 150, 60 + i * 90 + (0 if len(names) > 1 else 45))
    return pos


LEGEND = "dashed: WireGuard peers; green: the probe's path; red: where it stopped"


def topology_svg(lab: Lab, src: str, path_nodes: list[str] | None = None, stop: str | None = None,
                 legend: str = LEGEND) -> str:
    pos = _layout(lab, src)
    path_nodes = path_nodes or []
    w = max(x for x, _ in pos.values()) + 90
    h = max(y for _, y in pos.values()) + 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">']
    for l in lab.links:
        (x1, y1), (x2, y2) = pos[l.a.node], pos[l.b.node]
        on = l.a.node in path_nodes and l.b.node in path_nodes
        out.append(f'<line data-link="{escape(l.a.node)} {escape(l.b.node)}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{"#2a2" if on else "#999"}" stroke-width="{3 if on else 1.5}"/>')
    seen = set()
    for n in lab.nodes.values():
        for wg in n.wireguard.values():
            for p in wg.peers:
                key = tuple(sorted((n.name, p.peer)))
                if key in seen or p.peer not in pos:
                    continue
                seen.add(key)
                (x1, y1), (x2, y2) = pos[n.name], pos[p.peer]
                out.append(f'<path d="M{x1},{y1 - 18} Q{(x1 + x2) / 2},{min(y1, y2) - 60} {x2},{y2 - 18}" '
                           f'fill="none" stroke="#a3c" stroke-dasharray="5,4"/>')
    for name, (x, y) in pos.items():
        fill = "#fdd" if name == stop else "#dfd" if name in path_nodes else "#eef"
        stroke = "#c00" if name == stop else "#2a2" if name in path_nodes else "#669"
        out.append(f'<rect data-node="{escape(name)}" x="{x - 55}" y="{y - 16}" width="110" height="32" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="2"/>')
        out.append(f'<text x="{x}" y="{y + 4}" text-anchor="middle">{escape(name)}</text>')
    out.append(f'<text x="8" y="{h - 8}" fill="#555">{escape(legend)}</text>')
    out.append("</svg>")
    return "\n".join(out)
