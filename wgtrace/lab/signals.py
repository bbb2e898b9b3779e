"""Ctrl-C and SIGTERM while a lab is being built: unwind through the builder's cleanup."""
from __future__ import annotations

import contextlib
import signal
import sys


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a build. A subclass of KeyboardInterrupt: one passing through
    exec() would otherwise make the interpreter die by SIGINT, not exit 130."""


@contextlib.contextmanager
def interruptible():
    """The handler also remembers the signal: Python drops (and prints) an exception raised while
    it runs its fork hooks (every command run in a node forks), so that one is not printed and
    the next progress event raises it again (call the yielded ``check(kind)`` from every event)."""
    interrupted: list[int] = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        raise Interrupted()

    def check(kind: str = "") -> None:
        if interrupted and kind != "cleanup":
            raise Interrupted()
    old = (signal.signal(signal.SIGINT, on_signal), signal.signal(signal.SIGTERM, on_signal),
           sys.unraisablehook)
    hook = old[2]
    sys.unraisablehook = lambda u: None if isinstance(u.exc_value, Interrupted) else hook(u)
    try:
        yield check
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])
        sys.unraisablehook = hook
