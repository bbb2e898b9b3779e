"""The ``wgtrace`` command line: parse, call one function, render. Nothing else lives here."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from typing import List, Optional

import typer
from rich.console import Console

from .errors import ExitStatus, LabFileError, LabStateError, UsageError, WgtraceError

app = typer.Typer(help="Build the WireGuard relay network of a tutorial as a real lab, "
                       "follow a probe through it, and say where and why it stops.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
lab_app = typer.Typer(help="Build, inspect and remove labs.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")

out = Console()
err = Console(stderr=True, soft_wrap=True)


def fail(e: WgtraceError) -> None:
    from rich.markup import escape
    err.print(f"[bold red]wgtrace:[/] {escape(e.message)}", highlight=False)
    for d in e.details:
        err.print(f"  {d}", highlight=False, markup=False)
    raise typer.Exit(int(e.status))


def guarded(fn):
    """Turn wgtrace's own errors and Ctrl-C into one line and a documented exit code."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except WgtraceError as e:
            fail(e)
        except KeyboardInterrupt:
            err.print("[bold red]wgtrace:[/] interrupted; nothing was left half-built.")
            raise typer.Exit(int(ExitStatus.INTERRUPTED))
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as e:  # a bug or an unexpected refusal: one line, the trace only on request
            if os.environ.get("WGTRACE_DEBUG"):
                raise
            err.print(f"[bold red]wgtrace:[/] unexpected error: {type(e).__name__}: {e} "
                      f"(set WGTRACE_DEBUG=1 for the traceback)", highlight=False)
            raise typer.Exit(int(ExitStatus.FAILED))
    return wrapper


def _check_name(name: str | None) -> None:
    from .labfile import LAB_NAME_RE
    if name is not None and not LAB_NAME_RE.match(name):
        raise UsageError(f"--name {name!r}: a lab name is lower-case letters and digits, at most 12 characters.")


def _node(lab_state, node: str) -> "NodeHandle":
    from .node import NodeHandle
    if node not in lab_state.nodes:
        raise LabFileError(f"no node {node!r} in lab {lab_state.lab!r} "
                           f"(nodes: {', '.join(lab_state.nodes)}).")
    return NodeHandle(lab_state.lab, node, lab_state.wg_impl)


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while a lab is being built."""


@contextlib.contextmanager
def _interruptible():
    """Ctrl-C and SIGTERM unwind through the builder's cleanup. The handler also remembers the
    signal: Python drops (and prints) an exception raised while it runs its fork hooks (every
    command run in a node forks), so that one is not printed and the next progress event raises
    it again (call the yielded ``check(kind)`` from every event). A subclass of KeyboardInterrupt:
    one passing through exec() would otherwise make the interpreter die by SIGINT, not exit 130."""
    interrupted: list[int] = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        raise _Interrupted()

    def check(kind: str = "") -> None:
        if interrupted and kind != "cleanup":
            raise _Interrupted()
    old = (signal.signal(signal.SIGINT, on_signal), signal.signal(signal.SIGTERM, on_signal),
           sys.unraisablehook)
    hook = old[2]
    sys.unraisablehook = lambda u: None if isinstance(u.exc_value, _Interrupted) else hook(u)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])
        sys.unraisablehook = hook


@lab_app.command("up")
@guarded
def lab_up(lab: str = typer.Argument("seed", help="Lab name in labs/ or path to a lab file."),
           stage: Optional[str] = typer.Option(None, "--stage", "-s",
                                               help="Stage number or name (default: the last)."),
           name: Optional[str] = typer.Option(None, "--name", help="Run under another name, beside other labs.")):
    """Build a lab in network namespaces, at a stage of its walkthrough."""
    from .build import lab_up as up
    from .labfile import load_lab
    from .preflight import require_root
    require_root()
    _check_name(name)
    model = load_lab(lab, rename=name)
    index = None
    if stage is not None:
        index = model.stage_index(stage)
        if index is None:
            names = ", ".join(f"{i} {s.name}" for i, s in enumerate(model.stages))
            raise LabFileError(f"lab {model.name!r} has no stage {stage!r} (stages: {names}).")
    with _interruptible() as check, err.status("building…", spinner="dots") as status:
        def on_event(kind: str, data: dict) -> None:
            check(kind)
            if kind == "stage":
                status.update(f"stage {data['index']} {data['name']}: {data['title']}")
            elif kind == "phase":
                status.update(f"building: {data['text']}")
            elif kind == "cleanup":
                status.update("removing what was built…")
        st = up(model, index, on_event=on_event)
    opt = "" if st.lab == "seed" else f" --lab {st.lab}"
    err.print(f"lab [cyan]{st.lab}[/] is up at stage {st.stage} ({st.stage_name}), "
              f"WireGuard: {st.wg_impl}. Try: wgtrace lab status{opt}, wgtrace shell home{opt}", soft_wrap=True)


@lab_app.command("down")
@guarded
def lab_down(lab: Optional[str] = typer.Argument(None, help="Lab to remove (default: the only one up)."),
             all_: bool = typer.Option(False, "--all", help="Remove every wgtrace lab on this machine.")):
    """Remove a lab: processes, namespaces, files. Also cleans up after a crashed run."""
    from .preflight import require_root
    from .teardown import all_labs, lab_down as down
    require_root()
    labs = all_labs()
    if all_:
        targets = labs
    elif lab:
        targets = [lab]
    elif len(labs) <= 1:
        targets = labs
    else:
        raise UsageError(f"several labs are up ({', '.join(labs)}): name one, or use --all.")
    if not targets:
        err.print("no lab is up.")
    for name in targets:
        removed = down(name)
        err.print(f"lab [cyan]{name}[/] removed." if removed else f"lab {name!r} was not up.")


@lab_app.command("status")
@guarded
def lab_status(lab: Optional[str] = typer.Option(None, "--lab", "-l", help="Which lab (default: the only one up)."),
               as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """Nodes, interfaces, addresses, routes and WireGuard peers of a running lab."""
    from .preflight import require_root
    from .status import lab_status as read
    require_root()
    st = read(lab)
    if as_json:
        print(json.dumps(st.to_json(), indent=2))
    else:
        from .render.labview import status_view
        out.print(status_view(st))


@lab_app.command("stages")
@guarded
def lab_stages(lab: str = typer.Argument("seed", help="Lab name or file."),
               running: Optional[str] = typer.Option(None, "--lab", "-l",
                                                     help="A running lab: show its real public keys.")):
    """The walkthrough's stages and the commands each one types, node by node."""
    from .labfile import load_lab
    from .runtime import load_state
    from .stages import stage_commands
    st = load_state(running or lab) if (running or "/" not in lab) else None
    if running and st is None:
        raise LabStateError(f"lab {running!r} is not up.")
    model = load_lab(st.file, rename=st.lab) if running else load_lab(lab)
    keys = st.keys if st else None
    for i, s in enumerate(model.stages):
        out.print(f"[bold]{i:2} {s.name}[/]  {s.title}", highlight=False)
        for c in stage_commands(model, i, keys):
            # never wrapped: a command must stay copyable
            out.print(f"     [cyan]{c.node}#[/] {c.text}", highlight=False, soft_wrap=True)


@lab_app.command("export")
@guarded
def lab_export(directory: str = typer.Argument(..., help="Where to write <node>-wg0.conf files."),
               lab: Optional[str] = typer.Option(None, "--lab", "-l")):
    """Write what the lab built as wg-quick files, one per WireGuard node."""
    from .export import export_all
    from .preflight import require_root
    from .status import require_lab
    from .trace import lab_of
    require_root()
    st = require_lab(lab)
    for path in export_all(lab_of(st), st, directory):
        err.print(f"wrote {path}")


@lab_app.command("exec", context_settings={"allow_interspersed_args": False})
@guarded
def lab_exec(node: str = typer.Argument(..., help="Node to run in."),
             cmd: List[str] = typer.Argument(..., help="Command and arguments (after --)."),
             lab: Optional[str] = typer.Option(None, "--lab", "-l")):
    """Run a command inside a node (its namespace and its own WireGuard runtime); exit code passed through."""
    from .preflight import require_root
    from .status import require_lab
    require_root()
    if len(cmd) > 1 and cmd[0] in ("--lab", "-l"):      # `lab exec NODE --lab X -- CMD`, as typed
        lab, cmd = cmd[1], cmd[2:]
    h = _node(require_lab(lab), node)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("no command given: wgtrace lab exec NODE -- CMD [ARGS...]")
    raise typer.Exit(_run_foreground(h, cmd))


def _run_foreground(h, argv: list[str]) -> int:
    """Run in the foreground; the child gets Ctrl-C (a handler, unlike SIG_IGN, is not inherited
    across exec), we wait for it. Exit status as a shell gives it: 127 not found, 128+N killed."""
    old = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        try:
            p = h.popen(argv)
        except FileNotFoundError:
            err.print(f"wgtrace: {argv[0]}: command not found on {h.name}.", markup=False, highlight=False)
            return 127
        code = p.wait()
        return 128 - code if code < 0 else code
    finally:
        signal.signal(signal.SIGINT, old)


@app.command("shell")
@guarded
def shell(node: str = typer.Argument(..., help="Node to open a shell on."),
          lab: Optional[str] = typer.Option(None, "--lab", "-l")):
    """An interactive shell on a node; the document's commands work as typed there."""
    from .preflight import require_root
    from .status import require_lab
    require_root()
    st = require_lab(lab)
    h = _node(st, node)
    err.print(f"shell on [cyan]{node}[/] (lab {st.lab}); 'exit' or Ctrl-D to leave.")
    ps1 = f"[{st.lab}] {node}:\\w# "
    sh = ["bash", "--norc", "--noprofile", "-i"] if os.path.exists("/bin/bash") else ["sh", "-i"]
    old = signal.signal(signal.SIGINT, lambda *_: None)   # Ctrl-C belongs to the shell
    try:
        code = h.popen(sh, env={"PS1": ps1}).wait()
    finally:
        signal.signal(signal.SIGINT, old)
    raise typer.Exit(128 - code if code < 0 else code)


@app.command("trace")
@guarded
def trace(src: str = typer.Argument(..., help="Node that sends the probe."),
          dst: str = typer.Argument(..., help="Node name or IP address inside the lab."),
          tcp: Optional[int] = typer.Option(None, "--tcp", help="Send a TCP SYN to this port."),
          udp: Optional[int] = typer.Option(None, "--udp", help="Send a UDP datagram to this port."),
          size: Optional[int] = typer.Option(None, "--size", help="IP packet length in bytes, DF set."),
          lab: Optional[str] = typer.Option(None, "--lab", "-l"),
          as_json: bool = typer.Option(False, "--json", help="Machine-readable output (docs/json.md)."),
          pcap: Optional[str] = typer.Option(None, "--pcap", help="Write one pcap per interface here."),
          no_underlay: bool = typer.Option(False, "--no-underlay", help="Hide WireGuard's UDP datagrams.")):
    """Send one probe and follow it through every interface of every node."""
    from .preflight import require_root
    from .trace import run_trace
    require_root()
    if pcap and os.path.exists(pcap) and not os.path.isdir(pcap):
        raise UsageError(f"--pcap {pcap}: exists and is not a directory.")
    res, obs = run_trace(src, dst, lab, tcp, udp, size, keep_raw=bool(pcap))
    if pcap:
        from .render.pcap import write_pcaps
        paths = write_pcaps(obs.captures, pcap)
        err.print(f"wrote {len(paths)} pcap files to {pcap}")
    if as_json:
        print(json.dumps(res.to_json(), indent=2))
    else:
        from .render.tracepath import trace_view
        out.print(trace_view(res, underlay=not no_underlay), highlight=False)
    raise typer.Exit(int(ExitStatus.OK if res.reachable else ExitStatus.STOPPED))


@app.command("diagnose")
@guarded
def diagnose(src: str = typer.Argument(..., help="Node that sends the probe."),
             dst: str = typer.Argument(..., help="Node name or IP address inside the lab."),
             tcp: Optional[int] = typer.Option(None, "--tcp", help="Probe with a TCP SYN to this port."),
             udp: Optional[int] = typer.Option(None, "--udp", help="Probe with UDP to this port."),
             size: Optional[int] = typer.Option(None, "--size", help="IP packet length in bytes, DF set."),
             lab: Optional[str] = typer.Option(None, "--lab", "-l"),
             as_json: bool = typer.Option(False, "--json", help="Machine-readable verdict (docs/json.md)."),
             fix: bool = typer.Option(False, "--fix", help="Apply the fix, diagnose again, until reachable."),
             lang: str = typer.Option("en", "--lang", help="Language of the explanation: en or zh.")):
    """Where the probe stops, why, on what evidence, and the commands that fix it."""
    from .preflight import require_root
    from .diagnose import fix_loop, run_diagnose
    require_root()
    if lang not in ("en", "zh"):
        raise UsageError("--lang is en or zh.")
    kw = dict(tcp=tcp, udp=udp, size=size, lang=lang)
    if fix:
        from .progress import load_record
        from .status import require_lab
        rec = load_record("exercise")
        if rec and rec.lab == require_lab(lab).lab:
            rec.log("fix")          # a grader should know the tool, not the student, repaired it
        from .render.verdictview import fix_step_view
        rounds = iter(range(1, 100))
        steps = fix_loop(src, dst, lab, on_step=(lambda s: None) if as_json else
                         (lambda s: out.print(fix_step_view(s, next(rounds)), highlight=False)), **kw)
        final = steps[-1].diagnosis
        if as_json:
            print(json.dumps({"steps": [{**s.diagnosis.to_json(), "applied": s.applied} for s in steps],
                              "reachable": final.reachable}, indent=2, ensure_ascii=False))
        else:
            out.print(("[bold green]reachable[/]" if final.reachable else "[bold red]not reachable[/]")
                      + f" after {len(steps)} round(s)")
        raise typer.Exit(int(ExitStatus.OK if final.reachable else ExitStatus.STOPPED))
    d = run_diagnose(src, dst, lab, **kw)
    if as_json:
        print(json.dumps(d.to_json(), indent=2, ensure_ascii=False))
    else:
        from .render.verdictview import verdict_view
        out.print(verdict_view(d), highlight=False)
    raise typer.Exit(int(ExitStatus.OK if d.reachable else ExitStatus.STOPPED))


@app.command("break")
@guarded
def break_(fault: Optional[str] = typer.Argument(None, help="Name of the fault to inject."),
           list_: bool = typer.Option(False, "--list", help="List the lab's faults."),
           lab: Optional[str] = typer.Option(None, "--lab", "-l")):
    """Inject a named fault into a running lab (an exercise); --list shows them."""
    from .faults import find_fault, inject, load_faults
    from .preflight import require_root
    from .runtime import load_state
    from .status import require_lab
    if list_ or not fault:
        from .labfile import find_lab
        st = load_state(lab) if lab else None
        faults = load_faults(st.file if st else str(find_lab(lab or "seed")))
        for f in faults:
            out.print(f"[bold]{f.name:<28}[/] {f.summary}  [dim]({f.cause} at {f.node})[/]", highlight=False)
        return
    require_root()
    st = require_lab(lab)
    f = find_fault(load_faults(st.file), fault)
    for node, cmd in inject(f, st):
        err.print(f"[cyan]{node}#[/] {cmd}", highlight=False)
    err.print(f"fault [bold]{f.name}[/] injected: {f.summary}")


@app.command("walk")
@guarded
def walk_cmd(lesson: str = typer.Argument("seed", help="Lesson to walk through (lessons/)."),
             lang: str = typer.Option("en", "--lang", help="en or zh."),
             yes: bool = typer.Option(False, "--yes", "-y", help="Run every stage without pausing."),
             keep: bool = typer.Option(False, "--keep", help="Leave the lab up at the end."),
             name: Optional[str] = typer.Option(None, "--name", help="Run the lab under another name.")):
    """The document's walkthrough on a real lab: each stage's commands, where the probe stops, why."""
    from .lesson import load_lesson
    from .preflight import require_root
    from .render.walkview import WalkView
    from .walk import walk
    require_root()
    les = load_lesson(lesson, lang)
    view = WalkView(out, les)
    out.print(f"[bold]{les.title}[/]\n{les.intro.strip()}", highlight=False)

    def pause(i: int) -> bool:
        if yes or not sys.stdin.isatty():
            return True
        try:
            return typer.prompt("Enter for the next stage, q to stop", default="", show_default=False) != "q"
        except typer.Abort:          # Ctrl-C or Ctrl-D at the prompt
            raise KeyboardInterrupt from None
    _check_name(name)
    with _interruptible() as check:
        res = walk(les, name=name, keep=keep, on_event=lambda k, d: (check(k), view(k, d)), pause=pause)
    raise typer.Exit(int(ExitStatus.OK if res.ok else ExitStatus.STOPPED))


@app.command("lesson")
@guarded
def lesson_cmd(lesson: str = typer.Argument("seed", help="Lesson to work through (lessons/)."),
               lang: str = typer.Option("en", "--lang", help="en or zh."),
               restart: bool = typer.Option(False, "--restart", help="Forget saved progress and start over."),
               name: Optional[str] = typer.Option(None, "--name", help="Run the lab under another name.")):
    """Guided mode: type each stage's commands yourself; the lab checks when the stage holds."""
    from .guided import GuidedLesson
    from .lesson import load_lesson
    from .preflight import require_root
    require_root()
    styles = {"info": "", "ok": "bold green", "bad": "red", "cmd": "cyan", "out": "dim"}
    # soft_wrap: commands are never broken across lines, so they can be copied and pasted
    g = GuidedLesson(load_lesson(lesson, lang), lambda k, t: out.print(t, style=styles.get(k, ""), soft_wrap=True,
                                                                     markup=False, highlight=False), restart, name)
    out.print(f"[bold]{g.lesson.title}[/]", highlight=False)
    g.start()
    g.cmd_help()
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    while not g.done:
        try:
            line = input(g.prompt())
        except EOFError:
            break
        except KeyboardInterrupt:
            out.print()
            continue
        try:
            g.handle(line)
        except WgtraceError as e:
            err.print(f"[bold red]wgtrace:[/] {e.message}", highlight=False)
    out.print("progress saved; 'wgtrace lesson' resumes, 'wgtrace lab down' removes the lab.")


@app.command("exercise")
@guarded
def exercise(seed: Optional[int] = typer.Option(None, "--seed", help="Same seed, same faults."),
             faults: int = typer.Option(2, "--faults", "-k", help="How many faults to inject."),
             lab: str = typer.Option("seed", "--lab", "-l", help="Lab file to build."),
             name: Optional[str] = typer.Option(None, "--name", help="Run the lab under another name.")):
    """Bring up the finished lab with K random faults from the catalogue; find and fix them."""
    import random
    from .build import lab_up as up
    from .faults import inject, load_faults, pick
    from .labfile import load_lab
    from .preflight import require_root
    from .progress import Record
    require_root()
    _check_name(name)
    if faults < 1:
        raise UsageError("--faults is how many faults to inject: 1 or more.")
    model = load_lab(lab, rename=name)
    catalogue = load_faults(model.path)
    seed = seed if seed is not None else random.randrange(10000)
    chosen = pick(catalogue, faults, seed)
    from .teardown import lab_down as down
    with _interruptible() as check, err.status("building…"):
        st = up(model, on_event=lambda kind, data: check(kind))
        try:
            for f in chosen:
                check()
                inject(f, st)
        except BaseException:
            down(st.lab)            # a half-broken exercise is worse than none
            raise
    rec = Record("exercise", "exercise", st.lab, seed=seed, faults=[f.name for f in chosen], lab_file=model.path)
    opt = "" if st.lab == "seed" else f" --lab {st.lab}"
    rec.log("exercise", faults=[f.name for f in chosen])
    src, dst = model.probe_src or "home", model.probe_dst or "target"
    out.print(f"Exercise (seed {seed}): lab [cyan]{st.lab}[/] is up with {len(chosen)} fault(s). "
              f"Make {src} reach {dst} again (ping and TCP 22).\n"
              f"Tools: wgtrace shell NODE{opt}, wgtrace trace {src} {dst}{opt}, wgtrace diagnose {src} {dst}{opt}. "
              f"When done: wgtrace check{opt}.", highlight=False)


@app.command("check")
@guarded
def check(lab: Optional[str] = typer.Option(None, "--lab", "-l"),
          lang: str = typer.Option("en", "--lang"),
          as_json: bool = typer.Option(False, "--json")):
    """Pass/fail for graders: exit 0 only when home reaches target (ping and TCP 22)."""
    from .diagnose import run_diagnose
    from .preflight import require_root
    from .progress import load_record
    from .render.verdictview import verdict_view
    from .status import require_lab
    from .trace import lab_of
    require_root()
    st = require_lab(lab)
    model = lab_of(st)
    src, dst = model.probe_src or "home", model.probe_dst or "target"
    results = [run_diagnose(src, dst, st.lab, lang=lang)]
    if results[0].reachable:
        results.append(run_diagnose(src, dst, st.lab, tcp=22, lang=lang))
    ok = all(d.reachable for d in results)
    rec = load_record("exercise")
    if rec and rec.lab == st.lab:
        d = results[-1]
        rec.log("check", passed=ok, cause=d.verdict.cause, stop=d.verdict.stop,
                path=d.trace.inner_path("request"), story=d.trace.story,
                     nodes=list(dict.fromkeys(h.node for h in d.trace.hops)))
        if ok and not rec.finished:
            import time
            rec.finished = time.time()
            rec.save()
    if as_json:
        print(json.dumps({"passed": ok, "checks": [d.to_json() for d in results]}, indent=2, ensure_ascii=False))
    else:
        for d in results:
            out.print(verdict_view(d), highlight=False)
        out.print("[bold green]PASS[/]" if ok else "[bold red]FAIL[/]")
    raise typer.Exit(int(ExitStatus.OK if ok else ExitStatus.STOPPED))


@app.command("report")
@guarded
def report(lesson: Optional[str] = typer.Option(None, "--lesson", help="Report on this lesson's progress."),
           lab: str = typer.Option("seed", "--lab", "-l", help="With --lesson: the lab name it ran under."),
           html_file: Optional[str] = typer.Option(None, "--html", help="Write an HTML report here."),
           md_file: Optional[str] = typer.Option(None, "--md", help="Write a Markdown report here.")):
    """A self-contained record of a lesson or exercise: stages, verdicts, time, a picture."""
    from .progress import load_record
    from .report import html, markdown
    rec = load_record("lesson", lesson, lab) if lesson else load_record("exercise")
    if rec is None:
        raise UsageError("nothing to report yet: run 'wgtrace exercise' or 'wgtrace lesson' first.")
    if html_file:
        with open(html_file, "w", encoding="utf-8") as f:
            f.write(html(rec))
    if md_file:
        with open(md_file, "w", encoding="utf-8") as f:
            f.write(markdown(rec))
    if not html_file and not md_file:
        print(markdown(rec))


@app.command("doctor")
@guarded
def doctor():
    """What this machine has and lacks for wgtrace."""
    from .preflight import REQUIRED, TOOLS, machine_report
    r = machine_report()
    ok = lambda b: "[green]yes[/]" if b else "[red]no[/]"
    out.print(f"root:            {ok(r.root)}")
    out.print(f"WireGuard:       [magenta]{r.wg_impl}[/]"
              + ("" if r.wg_impl == "kernel" else " (no kernel module; the userspace daemon is used)"))
    out.print(f"iptables:        {r.iptables_variant}")
    if r.wg_impl == "wireguard-go":
        from .preflight import inotify_use
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
