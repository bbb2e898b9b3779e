"""``wgtrace serve`` from start to Ctrl-C: bind, read the labs, serve, and leave nothing behind.

Stopping (Ctrl-C, or SIGTERM) closes every event stream, stops the poller, lets a probe under way
finish (a probe cut short could leave its capture sockets or the lab's probe lock held) and its
page get the answer, and closes the listening socket: after it, no thread, child or socket of the server is left.
"""
from __future__ import annotations

import errno
import ipaddress
import signal
import socket

from ..errors import NotRoot, UsageError
from . import labs
from .app import App, Server
from .live import Hub, Poller
from .page import sayer
from .probes import Probes, Results


class PortInUse(UsageError):
    """The address asked for cannot be listened on: choose another with --port or --host."""


def accepted_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers a request to this server carries; None when bound to every address
    (then the page is meant to be reached under any name)."""
    if host in ("", "0.0.0.0", "::"):
        return None
    names = {host}
    try:
        if ipaddress.ip_address(host).is_loopback:
            names |= {"localhost", "127.0.0.1", "::1"}
    except ValueError:
        if host == "localhost":
            names |= {"127.0.0.1", "::1"}
    out = set()
    for n in names:
        n = f"[{n}]" if ":" in n else n
        out.add(f"{n}:{port}".lower())
        if port == 80:
            out.add(n.lower())
    return out


def bind(host: str, port: int, app: App) -> Server:
    try:
        return Server((host, port), app)
    except socket.gaierror:
        raise PortInUse(f"--host {host}: no such address on this machine.") from None
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is in use (another wgtrace serve?): "
                            f"choose another with --port.") from None
        if e.errno == errno.EACCES:
            raise PortInUse(f"port {port} needs root (ports below 1024): choose another with --port.") from None
        if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise PortInUse(f"--host {host}: this machine has no such address.") from None
        raise PortInUse(f"cannot listen on {host} port {port}: {e.strerror}.") from None


def serve(host: str, port: int, allow_probes: bool, lang: str, interval: float, on_ready) -> None:
    """Serve until Ctrl-C. ``on_ready(url, read_only_reason)`` is called once it listens."""
    say = sayer(lang)
    if not 0 <= port < 65536:
        raise UsageError("--port takes a port number from 1 to 65535 (0: any free port).")
    if not 0.2 <= interval <= 60:
        raise UsageError("--interval is seconds between two readings of the labs, from 0.2 to 60.")
    if allow_probes:
        why = labs.probes_possible()
        if why:
            raise NotRoot(f"--allow-probes: {why}")
    hub, results = Hub(), Results()
    poller = Poller(hub, results, interval, say("legend"))
    probes = Probes(results, lambda name: poller.tick(only=name), lang, say("legend")) if allow_probes else None
    why_not = "" if allow_probes else say("read-only")
    app = App(hub, probes, why_not, lang, None)
    server = bind(host, port, app)
    app.hosts = accepted_hosts(host, server.server_address[1])
    # Ctrl-C and SIGTERM both stop it, even when started where SIGINT is ignored (a shell's "&")
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        poller.start()
        h, p = server.server_address[:2]
        on_ready(f"http://{f'[{h}]' if ':' in h else h}:{p}/", why_not)
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        hub.close()                  # event streams end
        poller.stop()
        if probes is not None:
            probes.close()           # a probe under way finishes,
            app.drain()              # and its page gets the answer
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
