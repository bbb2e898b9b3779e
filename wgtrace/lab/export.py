"""``lab export``: write each WireGuard interface of a running lab as a wg-quick file.

One directory per node, one file per interface: ``DIR/NODE/IFACE.conf``, so wg-quick names the
interface as the lab does and ``wgtrace lab import DIR/*/*.conf`` gives each node its name back
(a file names its node after its directory when it is called like an interface).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..output.wgquick import wg_quick
from ..network import Network


def export_lab(net: Network, directory: str) -> list[Path]:
    out = Path(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{directory}: exists and is not a directory; give a directory to write into.") from None
    except OSError as e:
        raise UsageError(f"{directory}: cannot create it ({e.strerror}).") from None
    names = {v: k for k, v in net.keys.items()}
    last = net.stage if net.stage is not None else len(net.model.stages) - 1
    upto = {None} | {s.name for s in net.model.stages[1:last + 1]}     # None: stage 0, the base
    written = []
    for name, node in net.nodes.items():
        for w in node.wg():
            private = (node.home_dir / "private").read_text().strip()
            path = out / name / f"{w.name}.conf"
            try:
                path.parent.mkdir(mode=0o700, exist_ok=True)
                path.write_text(wg_quick(net.model.nodes[name], w, private, names, upto))
                path.chmod(0o600)
            except OSError as e:
                raise UsageError(f"{path}: cannot write it ({e.strerror}).") from None
            written.append(path)
    return written
