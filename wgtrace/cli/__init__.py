"""The ``wgtrace`` command line: each command parses, calls one function, emits the result.

Commands live by subject: lab.py (lab …, shell), probe.py (trace, diagnose, break), hosts.py
(status, discover: real hosts), teach.py (walk, lesson, exercise, check, report), serve.py (serve,
a web page for a class), doctor.py; common.py holds the consoles, options, error handling and exit
codes they share. No logic about labs, probes or grades lives here.
"""
from __future__ import annotations

import typer

from . import doctor, hosts, lab, probe, serve, teach

app = typer.Typer(help="Build WireGuard networks as real labs, follow a probe through them, "
                       "and say where and why it stops.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version
        try:
            typer.echo(f"wgtrace {version('wgtrace')}")
        except PackageNotFoundError:          # run from a checkout that was never installed
            from .. import __version__
            typer.echo(f"wgtrace {__version__}")
        raise typer.Exit()


@app.callback()
def _top(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """Build WireGuard networks as real labs, follow a probe through them, and say where and why it stops."""
app.add_typer(lab.lab_app, name="lab")
app.command("shell")(lab.shell)
app.command("trace")(probe.trace)
app.command("diagnose")(probe.diagnose)
app.command("break")(probe.break_)
app.command("status")(hosts.status)       # real hosts over SSH (--hosts)
app.command("discover")(hosts.discover)
for name in ("walk", "lesson", "exercise", "check", "report"):
    app.command(name)(getattr(teach, name))
app.command("doctor")(doctor.doctor)
app.command("serve")(serve.serve)


def main() -> None:
    app()
