"""One switch for what waits on IPv6 probes and verdicts (issue 17, branch ``ipv6``).

Until they are merged, a diagnosis over IPv6 cannot be made: the catalogued faults whose probe
is an IPv6 address are strict xfail (recorded fixtures cannot exist for them yet), and a lab's
IPv6 checks are left out of the ``check --all`` runs that follow a fix. Flip ``IPV6_VERDICTS``
to True when issue 17 has landed: every such test then runs, and a strict xfail that starts to
pass fails first, so nothing stays marked by mistake.
"""
from __future__ import annotations

import pytest

IPV6_VERDICTS = True
REASON = "IPv6 verdicts land with issue 17"


def six_probe(fault) -> bool:
    """Does the fault's probe go over IPv6 (its destination an IPv6 address)?"""
    return ":" in str(fault.probe.get("dst", ""))


def six_check(check) -> bool:
    return check.family == 6 or ":" in check.dst


def pending(fault) -> tuple:
    """The marks of a fault's test case."""
    return (pytest.mark.xfail(strict=True, reason=REASON),) if six_probe(fault) and not IPV6_VERDICTS else ()


def checks_now(checks) -> tuple:
    """The checks that can be run now."""
    return tuple(checks) if IPV6_VERDICTS else tuple(c for c in checks if not six_check(c))
