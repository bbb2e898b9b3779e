"""The HTTP side of ``wgtrace serve``: routes, the event stream, starting and stopping.

Python's own ``ThreadingHTTPServer`` (a thread per connection), server-sent events for the live
updates and the page's own small script: no dependency, no build step, nothing from outside.

Routes:
  GET  /                          the page (its texts and the current state inlined)
  GET  /static/app.js|app.css     the page's script and style (package data)
  GET  /api/state                 every lab (JSON)      GET /api/labs/NAME   one lab
  GET  /events?since=N            server-sent events: "lab", "gone", "snapshot"
  POST /api/labs/NAME/diagnose    {"src", "dst", "kind": "icmp"|"tcp"|"udp", "port"}  (--allow-probes)
  POST /api/labs/NAME/check       every pair of the lab's checks                        (--allow-probes)
Errors are JSON {"error": one sentence} with 400, 403, 404, 409, 500 or 503.

Safety: bound to 127.0.0.1 unless told otherwise; requests whose Host is not this server's are
refused (a web page elsewhere cannot reach it by DNS rebinding), probes only by POST with a JSON
body (a form on another site cannot send one without the browser asking first) and only from the
page's own origin.
"""
from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import labs, page
from .live import Hub
from .probes import Busy, Probes

HEARTBEAT = 15.0            # seconds between keep-alive comments on an idle event stream
MAX_STREAMS = 256           # open event streams at once; past that, 503 with a sentence
MAX_BODY = 4096


class Failure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Server(ThreadingHTTPServer):
    daemon_threads = True               # an open event stream must not hold up Ctrl-C
    allow_reuse_address = True
    request_queue_size = 128            # a class opening its pages at once (the default, 5, drops SYNs)

    def __init__(self, addr, app) -> None:
        self.app = app
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, Handler)

    def handle_error(self, request, client_address) -> None:
        pass                            # a client gone mid-answer is not the server's failure


class App:
    """What the handlers share: the hub, the probes, the words, the settings."""

    def __init__(self, hub: Hub, probes: Probes | None, why_not: str, lang: str, hosts: set[str] | None) -> None:
        self.hub, self.probes, self.why_not, self.lang = hub, probes, why_not, lang
        self.hosts = hosts              # Host headers accepted; None: any (bound to every address)
        self.say = page.sayer(lang)
        self.answering = threading.Condition()
        self.posts = 0                  # probe requests not answered yet

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every probe request under way has had its answer (after the probes ended)."""
        with self.answering:
            self.answering.wait_for(lambda: self.posts == 0, timeout)


class Handler(BaseHTTPRequestHandler):
    server_version = "wgtrace"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> App:
        return self.server.app

    def log_message(self, format, *args) -> None:       # quiet: the terminal is the instructor's
        pass

    # --- answers ----------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", page.CSP)
        for k, v in (extra or {"Cache-Control": "no-store"}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _fail(self, f: Failure) -> None:
        if self.path.startswith(("/api/", "/events")) or self.command == "POST":
            self._json(f.status, {"error": f.message})
        else:
            self._send(f.status, page.error_page(f.message, self.app.lang).encode(), "text/html; charset=utf-8")

    def _host_ok(self) -> bool:
        return self.app.hosts is None or (self.headers.get("Host") or "").lower() in self.app.hosts

    # --- dispatch ----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch(self._get)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        app = self.app
        with app.answering:
            app.posts += 1
        try:
            self._dispatch(self._post)
        finally:
            with app.answering:
                app.posts -= 1
                app.answering.notify_all()

    def _dispatch(self, fn) -> None:
        try:
            if not self._host_ok():
                raise Failure(403, self.app.say("bad-host"))
            fn(urlsplit(self.path))
        except Failure as f:
            self._fail(f)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True
        except Exception as e:          # a bug: one line for the instructor, one sentence for the page
            sys.stderr.write(f"wgtrace serve: unexpected error on {self.command} {self.path}: "
                             f"{type(e).__name__}: {e}\n")
            try:
                self._fail(Failure(500, self.app.say("unexpected", error=type(e).__name__)))
            except OSError:
                self.close_connection = True

    def _get(self, url) -> None:
        path, app = url.path, self.app
        if path == "/":
            body = page.render(app.hub.snapshot(), app.lang, app.probes is not None, app.why_not)
            return self._send(200, body.encode(), "text/html; charset=utf-8")
        if path.startswith("/static/"):
            got = page.static(path[len("/static/"):])
            if got is None:
                raise Failure(404, app.say("no-page", path=path))
            return self._send(200, got[0], got[1], {"Cache-Control": "no-cache"})
        if path == "/api/state":
            return self._json(200, {**app.hub.snapshot(), "probes": app.probes is not None, "why_not": app.why_not})
        if path.startswith("/api/labs/"):
            name = path[len("/api/labs/"):]
            return self._json(200, self._lab(name))
        if path == "/events":
            return self._events(parse_qs(url.query))
        raise Failure(404, app.say("no-page", path=path))

    def _lab(self, name: str) -> dict:
        lab = self.app.hub.labs.get(name)
        if lab is None:
            raise Failure(404, self.app.say("no-lab", lab=name))
        return lab

    def _post(self, url) -> None:
        app, parts = self.app, url.path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["api", "labs"] or parts[3] not in ("diagnose", "check"):
            raise Failure(404, app.say("no-page", path=url.path))
        body = self._body()
        if app.probes is None:
            raise Failure(403, app.why_not)
        name, what = parts[2], parts[3]
        lab = self._lab(name)
        try:
            if what == "check":
                return self._json(200, app.probes.check_all(name))
            src, dst, kind, port = self._probe_args(body, lab)
            return self._json(200, app.probes.diagnose(name, src, dst, kind, port))
        except Busy:
            raise Failure(409, app.say("busy", lab=name)) from None
        except labs.LabFileError as e:
            raise Failure(404, e.message) from None
        except labs.LabStateError as e:
            raise Failure(409, e.message) from None
        except labs.WgtraceError as e:
            raise Failure(400, e.message) from None

    def _body(self) -> dict:
        """A JSON object, sent by the page itself (a page of another origin cannot send one)."""
        say = self.app.say
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        origin = self.headers.get("Origin")
        if ctype != "application/json" or (origin and urlsplit(origin).netloc.lower() != (self.headers.get("Host") or "").lower()):
            raise Failure(403, say("bad-origin"))
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if not 0 <= n <= MAX_BODY:
            raise Failure(400, say("bad-body"))
        try:
            data = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            raise Failure(400, say("bad-body")) from None
        if not isinstance(data, dict):
            raise Failure(400, say("bad-body"))
        return data

    def _probe_args(self, body: dict, lab: dict) -> tuple[str, str, str, int]:
        say = self.app.say
        src, dst, kind = body.get("src"), body.get("dst"), body.get("kind") or "icmp"
        for node in (src, dst):
            if not isinstance(node, str) or node not in lab["nodes"]:
                raise Failure(404, say("no-node", lab=lab["name"], node=str(node), nodes=", ".join(lab["nodes"])))
        if src == dst:
            raise Failure(400, say("same-node"))
        if kind not in ("icmp", "tcp", "udp"):
            raise Failure(400, say("bad-kind"))
        port = body.get("port") or 0
        if kind != "icmp" and (not isinstance(port, int) or not 0 < port < 65536):
            raise Failure(400, say("bad-port"))
        return src, dst, kind, port if kind != "icmp" else 0

    # --- the event stream -------------------------------------------------------------------------------
    def _events(self, query: dict) -> None:
        hub = self.app.hub
        # EventSource sends the last id it got when it reconnects; the first time, the page's own
        since = hub.position(self.headers.get("Last-Event-ID") or (query.get("since") or [""])[0])
        with hub.cond:
            if hub.streams >= MAX_STREAMS:
                raise Failure(503, self.app.say("too-many"))
            hub.streams += 1
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Accel-Buffering", "no")
            self.end_headers()
            self.close_connection = True
            if self.command == "HEAD":
                return
            self.connection.settimeout(HEARTBEAT * 2)    # a reader that stopped reading is dropped
            self.wfile.write(b"retry: 2000\n\n")
            self.wfile.flush()
            last_write = time.monotonic()
            while not hub.closed:
                got = hub.since(since, HEARTBEAT) if since is not None else None
                if got is None:
                    snap = hub.snapshot()
                    self._event("snapshot", snap["seq"], snap)
                    since = snap["seq"]
                elif got:
                    for seq, kind, data in got:
                        self._event(kind, seq, data)
                    since = got[-1][0]
                elif time.monotonic() - last_write >= HEARTBEAT:
                    self.wfile.write(b": alive\n\n")
                else:
                    continue
                self.wfile.flush()
                last_write = time.monotonic()
        finally:
            with hub.cond:
                hub.streams -= 1

    def _event(self, kind: str, seq: int, data) -> None:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        self.wfile.write(f"id: {self.app.hub.run}-{seq}\nevent: {kind}\ndata: {text}\n\n".encode())
