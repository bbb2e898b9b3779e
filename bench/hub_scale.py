#!/usr/bin/env python3
"""A relay with many spokes: how `lab up`, `diagnose` and `lab down` grow with N.

For each N (default 10, 50, 200) it builds labs/hub.toml with --set spokes=N (one relay, N
spokes, a host behind each: 2N+2 nodes) and times, as whole commands:
    python3 -m wgtrace lab up hub --name hubN --set spokes=N
    python3 -m wgtrace diagnose h1 hN --lab hubN          (healthy, ROUNDS times: median)
    python3 -m wgtrace diagnose h1 hN --lab hubN          (broken: the relay stops forwarding)
    python3 -m wgtrace lab down hubN                       (then: nothing of it may be left)
It prints the figures, lab up per node, and the ratios of diagnose at N against the smallest N
(the targets: 50 spokes up in <= 10 s, 200 in <= 40 s; diagnose on 200 spokes <= 1.5 s healthy,
<= 3 s broken, and no more than 1.5x the same on 10 spokes).

Only labs named hubN are made; they are removed in a `finally`. Run as root:
    python3 bench/hub_scale.py [--spokes 10 50 200] [--rounds 5] [--lab-file labs/hub.toml]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WGT = [sys.executable, "-m", "wgtrace"]


def timed(args: list[str], timeout: float = 600) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run(WGT + args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t, r


def left_of(name: str) -> list[str]:
    out = [p for p in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else []) if p.startswith(f"wgt-{name}-")]
    return out + ([f"/run/wgtrace/{name}"] if os.path.exists(f"/run/wgtrace/{name}") else [])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spokes", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lab-file", default=os.path.join(REPO, "labs", "hub.toml"))
    a = ap.parse_args()
    rows = []
    for n in a.spokes:
        name = f"hub{n}"
        if left_of(name):
            print(f"{name} is up already: remove it first", file=sys.stderr)
            return 2
        try:
            up, r = timed(["lab", "up", a.lab_file, "--name", name, "--set", f"spokes={n}"])
            if r.returncode != 0:
                print(f"lab up {name} failed: {r.stderr.strip()}", file=sys.stderr)
                return 1
            ok = []
            for _ in range(a.rounds):
                t, d = timed(["diagnose", "h1", f"h{n}", "--lab", name])
                if d.returncode != 0:
                    print(f"h1 does not reach h{n}:\n{d.stdout}", file=sys.stderr)
                    return 1
                ok.append(t)
            subprocess.run(WGT + ["lab", "exec", "relay", "--lab", name, "--", "sysctl", "-qw",
                                  "net.ipv4.ip_forward=0"], cwd=REPO, check=True)
            bad = []
            for _ in range(a.rounds):
                t, d = timed(["diagnose", "h1", f"h{n}", "--lab", name])
                if d.returncode != 1 or "forwarding-disabled" not in d.stdout:
                    print(f"the broken hub was not diagnosed as such:\n{d.stdout}", file=sys.stderr)
                    return 1
                bad.append(t)
        finally:
            down, _ = timed(["lab", "down", name])
        left = left_of(name)
        rows.append((n, 2 * n + 2, up, statistics.median(ok), statistics.median(bad), down, left))
    print(f"{'spokes':>6} {'nodes':>6} | {'lab up s':>8} {'per node ms':>11} | {'diagnose ok':>11} {'broken':>7} | "
          f"{'lab down s':>10} | left")
    for n, nodes, up, ok, bad, down, left in rows:
        print(f"{n:>6} {nodes:>6} | {up:8.2f} {up / nodes * 1000:11.1f} | {ok:11.3f} {bad:7.3f} | {down:10.2f} | "
              f"{left or 'nothing'}")
    base = rows[0]
    for n, nodes, up, ok, bad, down, left in rows[1:]:
        print(f"{n} spokes against {base[0]}: diagnose healthy {ok / base[3]:.2f}x, broken {bad / base[4]:.2f}x, "
              f"lab up per node {up / nodes / (base[2] / base[1]):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
