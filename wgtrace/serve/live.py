"""Live state: a poller that reads every lab every second or two, and a hub that pushes changes.

"Live" means what can be read without touching a lab: its state file (up, building, stage), whether
its namespaces are still there, the progress records and the last ``check --all`` matrix kept
beside it. Nothing here sends a probe or opens a namespace, so fifty labs cost a few file reads a
second. A lab's JSON is sent only when it changed; each change is an event with a sequence number.
A page that (re)connects with the number it has gets what it missed, or a whole snapshot.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import deque

from . import labs, view


class Hub:
    """The current JSON of every lab, the pictures, and the last events, behind one condition."""

    def __init__(self, keep: int = 512) -> None:
        self.cond = threading.Condition()
        self.run = secrets.token_hex(4)   # this server's run: a page's numbers from another run are stale
        self.seq = 0
        self.labs: dict[str, dict] = {}
        self.pictures: dict[str, str] = {}
        self.events: deque[tuple[int, str, dict]] = deque(maxlen=keep)
        self.closed = False
        self.streams = 0                  # event streams open now

    def _push(self, kind: str, data: dict) -> None:
        self.seq += 1
        self.events.append((self.seq, kind, data))
        self.cond.notify_all()

    def put(self, lab: dict, svg: str | None) -> bool:
        """Store a lab's JSON; an event only when it differs from what pages have."""
        with self.cond:
            if self.labs.get(lab["name"]) == lab:
                return False
            if lab["picture"] and svg is not None:
                self.pictures[lab["picture"]] = svg
            self.labs[lab["name"]] = lab
            self._push("lab", {"lab": lab, "svg": self.pictures.get(lab["picture"]) if lab["picture"] else None})
            return True

    def drop(self, name: str) -> None:
        with self.cond:
            if self.labs.pop(name, None) is not None:
                self._push("gone", {"name": name, "at": time.time()})

    def snapshot(self) -> dict:
        with self.cond:
            used = {l["picture"] for l in self.labs.values() if l["picture"]}
            return {"run": self.run, "seq": self.seq, "labs": [self.labs[n] for n in sorted(self.labs)],
                    "pictures": {k: v for k, v in self.pictures.items() if k in used}}

    def position(self, last_id: str) -> int | None:
        """The sequence number in an event id ("RUN-SEQ") a page last got; None when it is from
        another run of the server, or no id at all."""
        run, _, seq = (last_id or "").partition("-")
        return int(seq) if run == self.run and seq.isdigit() else None

    def since(self, seq: int, timeout: float) -> list[tuple[int, str, dict]] | None:
        """Events after ``seq`` (waiting up to ``timeout`` for one); [] when none came; None when
        ``seq`` is older than what is kept, or newer than this run has: the page needs a snapshot."""
        with self.cond:
            if seq > self.seq or (seq < self.seq and (not self.events or self.events[0][0] > seq + 1)):
                return None
            if seq == self.seq and not self.closed:
                self.cond.wait(timeout)
            return [e for e in self.events if e[0] > seq]

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class Poller:
    """Reads every lab each ``interval`` seconds into the hub (in a thread of its own)."""

    def __init__(self, hub: Hub, results, interval: float = 1.0, legend: str = "") -> None:
        self.hub, self.results, self.interval, self.legend = hub, results, interval, legend
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wgtrace-serve-poller", daemon=True)
        self._lock = threading.Lock()          # one tick at a time (the poller, or a probe's end)
        self.ticks = 0
        self.tick_seconds = 0.0                # the last tick's duration

    def start(self) -> None:
        self.tick()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:          # a lab vanishing mid-read must not stop the page's updates
                continue

    def tick(self, only: str | None = None) -> None:
        with self._lock:
            t0 = time.monotonic()
            names = [only] if only else labs.lab_names()
            recs = labs.records()
            for name in names:
                self.refresh(name, recs)
            if not only:
                for gone in set(self.hub.labs) - set(names):
                    self.hub.drop(gone)
                    self.results.forget(gone)
            self.ticks += 1
            self.tick_seconds = time.monotonic() - t0

    def refresh(self, name: str, recs: list[dict]) -> None:
        r = labs.read(name, self.legend)
        if r is None:
            self.hub.drop(name)
            self.results.forget(name)
            return
        shape = r.model
        svg = shape.svg if shape else None
        stages = len(shape.stages) - 1 if shape else 0
        data = view.lab(r, view.picture_id(svg) if svg else None, view.progress(recs, name, r.started, stages),
                        view.matrix(labs.matrix(name), r.started), self.results.of(name, r.started))
        self.hub.put(view.redact(data, r.public_keys), svg)
