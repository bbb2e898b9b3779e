"""``wgtrace serve``: one web page for a class, the labs of this server live (wgtrace/serve/)."""
from __future__ import annotations

import typer

from .common import err, guarded, lang_of, lang_opt, out


@guarded
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every address "
                                                                 "of this machine; anyone who reaches it sees the labs)."),
          port: int = typer.Option(8765, "--port", help="Port to listen on (0: any free port)."),
          allow_probes: bool = typer.Option(False, "--allow-probes",
                                            help="Let the page start diagnoses and check --all (needs root)."),
          lang: str = lang_opt(),
          interval: float = typer.Option(1.0, "--interval", help="Seconds between two readings of the labs.")):
    """A web page of every lab on this server: picture, stage, checks, progress; diagnose from it."""
    from ..serve.run import serve as run

    def ready(url: str, read_only: str) -> None:
        out.print(f"wgtrace serve: {url}  (Ctrl-C stops it)", highlight=False)
        if read_only:
            err.print(read_only, highlight=False)
        if host not in ("127.0.0.1", "::1", "localhost"):
            err.print(f"note: listening on {host}: anyone who can reach this machine sees the page"
                      f"{' and can start probes' if allow_probes else ''}.", highlight=False)
    run(host, port, allow_probes, lang_of(lang), interval, ready)
    err.print("wgtrace serve stopped.", highlight=False)
