"""Probes started from the page: a diagnosis between two nodes, or every pair (check --all).

Only when the server was started with ``--allow-probes``. They run in a small pool of their own
(two at a time, whatever the number of pages), one at a time per lab (a second click on a busy
lab is told so), and what they found is kept per build of a lab, for every page to see. On
Ctrl-C the pool is drained: a probe under way finishes, so nothing of it is left in a lab.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import labs, view

WORKERS = 2
TIMEOUT = 300.0            # check --all on a big lab: one diagnosis per pair


class Busy(Exception):
    """A probe is already under way on this lab."""


class Results:
    """What the server's own probes left, per lab and build: {"running", "diagnosis", "error"}."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_lab: dict[str, tuple[float, dict]] = {}

    def of(self, name: str, started: float) -> dict | None:
        with self._lock:
            got = self._by_lab.get(name)
            return dict(got[1]) if got and got[0] == started else None

    def set(self, name: str, started: float, **fields) -> None:
        with self._lock:
            old = self._by_lab.get(name)
            cur = dict(old[1]) if old and old[0] == started else {"running": None, "diagnosis": None, "error": None}
            cur.update(fields)
            self._by_lab[name] = (started, cur)

    def forget(self, name: str) -> None:
        with self._lock:
            self._by_lab.pop(name, None)


class Probes:
    def __init__(self, results: Results, on_change, lang: str = "en", legend: str = "") -> None:
        self.results, self.on_change, self.lang, self.legend = results, on_change, lang, legend
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="wgtrace-serve-probe")
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def _run(self, name: str, running: str, work):
        r = labs.read(name)
        started, keys = (r.started, r.public_keys) if r else (0.0, frozenset())
        with self._lock:
            if name in self._busy:
                raise Busy(name)
            self._busy.add(name)
        try:
            self.results.set(name, started, running=running, error=None)
            self.on_change(name)
            try:
                out = view.redact(self._pool.submit(work, started, keys).result(timeout=TIMEOUT), keys)
            except Exception as e:
                self.results.set(name, started, running=None, error=getattr(e, "message", None) or str(e))
                raise
            self.results.set(name, started, running=None, error=None)
            return out
        finally:
            with self._lock:
                self._busy.discard(name)
            self.on_change(name)

    def diagnose(self, name: str, src: str, dst: str, kind: str, port: int) -> dict:
        def work(started: float, keys: frozenset) -> dict:
            d = labs.diagnose(name, src, dst, kind, port, self.lang)
            nodes, stop = view.path_of(d)
            v = view.redact(view.verdict(d, labs.picture(name, nodes, stop, self.legend), time.time()), keys)
            self.results.set(name, started, diagnosis=v)
            return v
        return self._run(name, f"{src} {dst} {view.probe_label(kind, port)}", work)

    def check_all(self, name: str) -> dict:
        return self._run(name, "check --all", lambda started, keys: labs.check_all(name, self.lang))

    def close(self) -> None:
        """Let a probe under way finish; drop the ones still waiting."""
        self._pool.shutdown(wait=True, cancel_futures=True)
