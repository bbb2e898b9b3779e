#!/usr/bin/env python3
"""Time `wgtrace diagnose --hosts` over real SSH against the lab backend, and as hosts are added.

One lab is built from tests/labs/seedssh.toml (the seed network plus a controller `ctl` with a
cable to every node's mgmt0; an sshd on every node) and prepared as tests/ssh_support.py does
(a key in ctl, authorized_keys in every node's own home, a hosts file in ctl's home). Then:

  healthy / broken   python3 -m wgtrace diagnose home target --hosts /root/hosts.toml
                     run inside ctl (`lab exec ctl`), every seed host reached over SSH, against
                     python3 -m wgtrace diagnose home 10.10.13.61 --lab LAB  (the lab backend, the
                     same lab, the same fault), for the healthy lab and each fault in FAULTS; the
                     lab is rebuilt for every fault (a fault is injected with wgtrace.lab.inject)
  hosts              the healthy diagnosis with 2, 3, ... 7 hosts in the hosts file (home and
                     target first), to show how the time grows with the number of hosts
  status             python3 -m wgtrace status --hosts (connect, read, close: no probe)

Times are wall-clock around each whole command (subprocess.run), medians of --rounds runs; each
run's verdict is checked (healthy: exit 0; fault: exit 1 and the catalogue's cause), a wrong
one aborts. Only the lab named by --name is made and removed (in a `finally`).
Run as root from anywhere:  python3 bench/ssh_hosts.py [--rounds N] [--name NAME]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]
FAULTS = ("company-return-rule-missing", "bcc-route-missing", "home-wrong-key")
ORDER = ["home", "target", "bcc", "company", "home-router", "company-router", "internet"]


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - t, r


def lab_cmd(lab: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "wgtrace", *args, "--lab", lab]


def ctl_cmd(lab: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "wgtrace", "lab", "exec", "ctl", "--lab", lab, "--", sys.executable, "-m",
            "wgtrace", *args]


def check(r: subprocess.CompletedProcess, want_rc: int, cause: str | None, what: str) -> None:
    ok = r.returncode == want_rc
    if ok and cause:
        ok = json.loads(r.stdout)["cause"] == cause
    if not ok:
        raise SystemExit(f"{what}: unexpected outcome (exit {r.returncode}): {r.stdout[-400:]} {r.stderr[-400:]}")


def median(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--name", default="sshbench")
    a = ap.parse_args()
    import ssh_support as S
    from wgtrace.lab.build import lab_up
    from wgtrace.lab.inject import inject
    from wgtrace.lab.runtime import load_state
    from wgtrace.lab.teardown import lab_down
    from wgtrace.model.faults import find_fault, load_faults
    from wgtrace.model.labfile import find_lab, load_lab
    if load_state(a.name) is not None:
        raise SystemExit(f"a lab {a.name!r} is up already: take it down or pass --name")
    faults = load_faults(str(find_lab("seed")))
    results: dict[str, list[float]] = {}

    def up(fault: str | None):
        lab_down(a.name)
        st = lab_up(load_lab(S.LAB_FILE, rename=a.name))
        hosts = S.prepare(a.name)
        for k in range(2, len(ORDER) + 1):
            S.write_hosts(a.name, f"hosts{k}.toml", nodes=ORDER[:k])
        if fault:
            inject(find_fault(faults, fault), st)
        return hosts

    try:
        for case in (None,) + FAULTS:
            hosts = up(case)
            label = case or "healthy"
            cause = find_fault(faults, case).cause if case else None
            rc = 1 if case else 0
            for _ in range(a.rounds):
                dt, r = timed(ctl_cmd(a.name, "diagnose", "home", "target", "--hosts", hosts, "--json"))
                check(r, rc, cause, f"ssh {label}")
                results.setdefault(f"ssh {label}", []).append(dt)
                dt, r = timed(lab_cmd(a.name, "diagnose", "home", "10.10.13.61", "--json"))
                check(r, rc, cause, f"lab {label}")
                results.setdefault(f"lab {label}", []).append(dt)
            if case is None:
                for _ in range(a.rounds):
                    for k in range(2, len(ORDER) + 1):
                        dt, r = timed(ctl_cmd(a.name, "diagnose", "home", "target", "--hosts",
                                              f"/root/hosts{k}.toml", "--json"))
                        check(r, 0, None, f"{k} hosts")
                        results.setdefault(f"ssh healthy, {k} hosts", []).append(dt)
                    dt, r = timed(ctl_cmd(a.name, "status", "--hosts", hosts, "--json"))
                    check(r, 0, None, "status")
                    results.setdefault("ssh status, 7 hosts", []).append(dt)
            print(f"{label}: done", file=sys.stderr)
    finally:
        lab_down(a.name)
    width = max(len(k) for k in results)
    print(f"medians of {a.rounds} runs (wall clock of the whole command):")
    for k, xs in results.items():
        print(f"  {k:<{width}}  {median(xs)}")
    for case in ("healthy",) + FAULTS:
        s, l = statistics.median(results[f"ssh {case}"]), statistics.median(results[f"lab {case}"])
        print(f"  ssh / lab, {case:<{max(len(f) for f in FAULTS)}}  {s / l:.2f}x")


if __name__ == "__main__":
    main()
