"""What every command shares: the consoles, options, one-line errors and exit codes."""
from __future__ import annotations

import functools
import os
from typing import Optional

import typer
from rich.console import Console

from ..errors import ExitStatus, UsageError, WgtraceError

out = Console(soft_wrap=True)        # a command or a path is never broken across lines
err = Console(stderr=True, soft_wrap=True)

LAB_HELP = "Which running lab (default: the only one up)."


def lab_opt():
    return typer.Option(None, "--lab", "-l", help=LAB_HELP)


def lang_opt():
    return typer.Option("en", "--lang", help="Language of the texts: en or zh (one file each in wgtrace/texts/).")


def set_opt():
    return typer.Option(None, "--set", help="Set a parameter of the lab file: NAME=VALUE (e.g. spokes=50).")


def params_of(pairs) -> dict[str, str]:
    out = {}
    for p in pairs or []:
        name, eq, value = p.partition("=")
        if not eq or not name:
            raise UsageError(f"--set {p!r}: write NAME=VALUE, like spokes=50.")
        out[name.strip()] = value.strip()
    return out


def json_opt():
    return typer.Option(False, "--json", help="Machine-readable output (docs/json.md).")


def fail(e: WgtraceError) -> None:
    from rich.markup import escape
    err.print(f"[bold red]wgtrace:[/] {escape(e.message)}", highlight=False)
    for d in e.details:
        err.print(f"  {d}", highlight=False, markup=False)
    raise typer.Exit(int(e.status))


def guarded(fn):
    """Turn wgtrace's own errors and Ctrl-C into one line and a documented exit code."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except WgtraceError as e:
            fail(e)
        except KeyboardInterrupt as e:
            lab, left = getattr(e, "lab", None), getattr(e, "left", None)
            if lab and left:
                err.print(f"[bold red]wgtrace:[/] interrupted; {len(left)} piece(s) of lab {lab} could not be "
                          f"removed ({left[0]}…): run 'wgtrace lab down {lab}'.", highlight=False)
            elif lab:
                err.print(f"[bold red]wgtrace:[/] interrupted; what lab {lab} had built was removed, "
                          f"nothing is left.", highlight=False)
            else:
                err.print("[bold red]wgtrace:[/] interrupted.")
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


def check_name(name: Optional[str]) -> None:
    from ..model.labfile import LAB_NAME_RE
    if name is not None and not LAB_NAME_RE.match(name):
        raise UsageError(f"--name {name!r}: a lab name is lower-case letters and digits, at most 12 characters.")


def lang_of(lang: str) -> str:
    from ..texts import check_lang
    return check_lang(lang)


def finish(ok: bool) -> None:
    """Exit 0 when the probe got through, 1 when it stopped (docs/exit-codes.md)."""
    raise typer.Exit(int(ExitStatus.OK if ok else ExitStatus.STOPPED))


def emit(result, as_json: bool = False, lang: str = "en", **kw) -> None:
    from ..output import emit as _emit
    _emit(result, "json" if as_json else "text", lang=lang, console=out, **kw)


def show_trace(res, as_json: bool, lang: str, pcap: str | None, no_underlay: bool) -> None:
    """A trace's result: the pcapng file if asked, then JSON or the terminal view; the exit code."""
    if pcap:
        from ..output import emit as emit_to
        err.print(f"wrote {emit_to(res, 'pcapng', dest=pcap)} frames to {pcap}")
    if as_json:
        emit(res, True, lang)
    else:
        from ..output.text import families_view
        from ..output.trace_view import trace_view
        out.print(families_view(res, lang, lambda r: trace_view(r, lang, underlay=not no_underlay)), highlight=False)
    finish(res.reachable)
