"""Errors a user can act on, and the exit code each kind of outcome gets.

Every command exits with one of ``ExitStatus``; the numbers are documented in
docs/exit-codes.md and stable, so scripts and graders can rely on them.
"""
from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0               # done; for trace/diagnose/check: the destination answered
    STOPPED = 1          # trace/diagnose/check: the probe did not get through
    USAGE = 2            # bad command line (typer's own code for usage errors)
    NOT_ROOT = 3
    MISSING_TOOL = 4
    LAB_STATE = 5        # lab already up, not up, or half-built
    LAB_FILE = 6         # unknown or malformed lab file, unknown node or stage
    FAILED = 7           # the kernel or a tool refused something while building
    INTERRUPTED = 130


class WgtraceError(Exception):
    """One clear sentence for the user, plus the exit status it maps to."""
    status = ExitStatus.FAILED

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class NotRoot(WgtraceError):
    status = ExitStatus.NOT_ROOT


class MissingTool(WgtraceError):
    status = ExitStatus.MISSING_TOOL


class LabStateError(WgtraceError):
    status = ExitStatus.LAB_STATE


class LabFileError(WgtraceError):
    status = ExitStatus.LAB_FILE


class UsageError(WgtraceError):
    status = ExitStatus.USAGE


class BuildError(WgtraceError):
    status = ExitStatus.FAILED
