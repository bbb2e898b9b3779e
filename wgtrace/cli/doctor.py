"""``wgtrace doctor``: what this machine has and lacks for wgtrace."""
from __future__ import annotations

import typer

from ..errors import ExitStatus
from .common import guarded, out


@guarded
def doctor():
    """What this machine has and lacks for wgtrace."""
    from ..lab.preflight import REQUIRED, TOOLS, inotify_use, machine_report
    r = machine_report()
    ok = lambda b: "[green]yes[/]" if b else "[red]no[/]"
    out.print(f"root:            {ok(r.root)}")
    out.print(f"WireGuard:       [magenta]{r.wg_impl}[/]"
              + ("" if r.wg_impl == "kernel" else " (no kernel module; the userspace daemon is used)"))
    out.print(f"iptables:        {r.iptables_variant}")
    if r.wg_impl == "wireguard-go":
        used, limit = inotify_use()
        out.print(f"inotify:         {used} of {limit} instances in use (one per wireguard-go interface; "
                  f"about {max(0, limit - used) // 3} more seed labs fit)", highlight=False)
    missing = []
    for tool, path in r.tools.items():
        need = tool in REQUIRED or (tool == "wireguard-go" and r.wg_impl == "wireguard-go")
        out.print(f"{tool:16} {path or '[red]missing[/]'}  ({TOOLS[tool]}{', required' if need else ''})",
                  highlight=False)
        if not path and need:
            missing.append(TOOLS[tool])
    if missing or not r.root:
        if missing:
            out.print(f"install: apt-get install --no-install-recommends {' '.join(sorted(set(missing)))}")
        raise typer.Exit(int(ExitStatus.MISSING_TOOL if missing else ExitStatus.NOT_ROOT))
    out.print("[green]ready.[/]")
