"""``wgtrace lab …`` and ``wgtrace shell``: build, look at, enter and remove labs."""
from __future__ import annotations

import os
from typing import List, Optional

import typer

from ..errors import LabFileError, UsageError
from .common import (check_name, emit, err, guarded, json_opt, lab_opt, lang_of, lang_opt, out, params_of,
                     set_opt)

lab_app = typer.Typer(help="Build, inspect and remove labs.", no_args_is_help=True)


@lab_app.command("up")
@guarded
def lab_up(lab: str = typer.Argument("seed", help="Lab name in labs/ or path to a lab file."),
           stage: Optional[str] = typer.Option(None, "--stage", "-s",
                                               help="Stage number or name (default: the last)."),
           name: Optional[str] = typer.Option(None, "--name", help="Run under another name, beside other labs."),
           set_: Optional[List[str]] = set_opt()):
    """Build a lab in network namespaces, at a stage of its walkthrough."""
    from ..lab.build import lab_up as up
    from ..lab.preflight import require_root
    from ..lab.signals import interruptible
    from ..model.labfile import load_lab
    require_root()
    check_name(name)
    model = load_lab(lab, rename=name, params=params_of(set_))
    index = None
    if stage is not None:
        index = model.stage_index(stage)
        if index is None:
            names = ", ".join(f"{i} {s.name}" for i, s in enumerate(model.stages))
            raise LabFileError(f"lab {model.name!r} has no stage {stage!r} (stages: {names}).")
    with interruptible() as check, err.status("building…", spinner="dots") as status:
        def on_event(kind: str, data: dict) -> None:
            check(kind)
            if kind == "stage":
                status.update(f"stage {data['index']} {data['name']}: {data['title']}")
            elif kind == "phase":
                status.update(f"building: {data['text']}")
            elif kind == "progress":
                status.update(f"building: nodes configured {data['done']}/{data['total']}")
            elif kind == "cleanup":
                status.update("removing what was built…")
        st = up(model, index, on_event=on_event)
    opt = f" --lab {st.lab}"
    first = model.probe_src or next(iter(model.nodes))
    err.print(f"lab [cyan]{st.lab}[/] is up at stage {st.stage} ({st.stage_name}), "
              f"WireGuard: {st.wg_impl}. Try: wgtrace lab status{opt}, wgtrace shell {first}{opt}", soft_wrap=True)


@lab_app.command("down")
@guarded
def lab_down(lab: Optional[str] = typer.Argument(None, help="Lab to remove (default: the only one up)."),
             lab_: Optional[str] = typer.Option(None, "--lab", "-l", help="The same, as an option."),
             all_: bool = typer.Option(False, "--all", help="Remove every wgtrace lab on this machine.")):
    """Remove a lab: processes, namespaces, files. Also cleans up after a crashed run."""
    from ..lab.preflight import require_root
    from ..lab.teardown import down
    require_root()
    if lab and lab_ and lab != lab_:
        raise UsageError(f"two labs named: {lab} and --lab {lab_}; name one.")
    done = down(lab or lab_, all_)
    if not done:
        err.print("no lab is up.")
    for name, removed in done:
        err.print(f"lab [cyan]{name}[/] removed." if removed else f"lab {name!r} was not up.")


@lab_app.command("status")
@guarded
def lab_status(lab: Optional[str] = lab_opt(), as_json: bool = json_opt()):
    """Nodes, interfaces, addresses, routes and WireGuard peers of a running lab."""
    from ..lab.status import lab_status as read
    emit(read(lab), as_json)


@lab_app.command("stages")
@guarded
def lab_stages(lab: str = typer.Argument("seed", help="Lab name or file."),
               running: Optional[str] = typer.Option(None, "--lab", "-l",
                                                     help="A running lab: show its real public keys.")):
    """The walkthrough's stages and the commands each one types, node by node (with the real
    public keys when a lab built from this file is up)."""
    from ..lab.open import model_and_keys
    from ..model.commands import stage_commands
    model, keys = model_and_keys(lab, running)
    for i, s in enumerate(model.stages):
        out.print(f"[bold]{i:2} {s.name}[/]  {s.title}", highlight=False, markup=True)
        for c in stage_commands(model, i, keys):
            # never wrapped: a command must stay copyable
            out.print(f"     [cyan]{c.node}#[/] ", end="", highlight=False)
            out.print(c.text, highlight=False, soft_wrap=True, markup=False)


@lab_app.command("export")
@guarded
def lab_export(directory: str = typer.Argument(..., help="Where to write DIR/<node>/<iface>.conf files."),
               lab: Optional[str] = lab_opt()):
    """Write what the lab built as wg-quick files, one per WireGuard interface (DIR/NODE/IFACE.conf:
    wg-quick names the interface as the lab does); 'wgtrace lab import' reads them back."""
    from ..lab.export import export_lab
    from ..opener import open_network
    with open_network(lab=lab) as net:
        written = export_lab(net, directory)
    for path in written:
        err.print(f"wrote {path}", highlight=False)
    if written:
        back = " ".join(f"{p.parent.name}={p}" for p in written)
        err.print(f"read them back as a lab file with: wgtrace lab import {back} -o LAB.toml",
                  highlight=False, markup=False, soft_wrap=True)


@lab_app.command("import")
@guarded
def lab_import(files: List[str] = typer.Argument(..., metavar="NODE=FILE…",
                                                 help="wg-quick files, each as NODE=FILE or FILE (the node named after the file)."),
               output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the lab file here (default: print it)."),
               name: Optional[str] = typer.Option(None, "--name", help="The lab's name (default: from -o, else 'imported')."),
               lang: str = lang_opt()):
    """Read wg-quick files (a server's and its clients') and write a lab file that rebuilds their
    network, wg-quick and all, with fresh keys ('wgtrace lab up FILE'). Nothing is built."""
    from ..texts import say
    from ..wgquick import import_to
    lang = lang_of(lang)
    r = import_to(files, output, name, lang)
    for line in r.warnings + r.findings + r.notes:
        err.print(line, highlight=False, markup=False, soft_wrap=True)
    if output:
        err.print(say("wgquick_cli.wrote", lang, path=output, nodes=len(r.lab["nodes"]), files=len(files),
                      findings=len(r.findings), notes=len(r.notes)), highlight=False, markup=False, soft_wrap=True)
    else:
        out.print(r.text(), highlight=False, markup=False, soft_wrap=True, end="")


@lab_app.command("exec", context_settings={"allow_interspersed_args": False})
@guarded
def lab_exec(node: str = typer.Argument(..., help="Node to run in."),
             cmd: List[str] = typer.Argument(..., help="Command and arguments (after --)."),
             lab: Optional[str] = lab_opt()):
    """Run a command inside a node (its namespace and its own WireGuard runtime); exit code passed through."""
    from ..opener import open_network
    if len(cmd) > 1 and cmd[0] in ("--lab", "-l"):      # `lab exec NODE --lab X -- CMD`, as typed
        lab, cmd = cmd[1], cmd[2:]
    with open_network(lab=lab) as net:
        h = net.node(node)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("no command given: wgtrace lab exec NODE -- CMD [ARGS...]")
    try:
        code = h.foreground(cmd)
    except FileNotFoundError:
        err.print(f"wgtrace: {cmd[0]}: command not found on {node}.", markup=False, highlight=False)
        code = 127
    raise typer.Exit(code)


@guarded
def shell(node: str = typer.Argument(..., help="Node to open a shell on."),
          lab: Optional[str] = lab_opt()):
    """An interactive shell on a node; the document's commands work as typed there."""
    from ..opener import open_network
    with open_network(lab=lab) as net:
        h = net.node(node)
    err.print(f"shell on [cyan]{node}[/] (lab {net.name}); 'exit' or Ctrl-D to leave.")
    sh = ["bash", "--norc", "--noprofile", "-i"] if os.path.exists("/bin/bash") else ["sh", "-i"]
    raise typer.Exit(h.foreground(sh, env={"PS1": f"[{net.name}] {node}:\\w# "}))
