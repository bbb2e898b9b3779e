#!/usr/bin/env python3
"""A class on one server: N seed labs up at once, one after another, each reaching target.

For N labs named class1..classN (default 50), it runs, one after the other,
    python3 -m wgtrace lab up --name classK        (timed)
    python3 -m wgtrace diagnose home target --lab classK   (must be reachable)
and prints per lab: the time of `lab up`, the resident memory of the lab's processes
(wireguard-go, sshd: every process in the lab's namespaces), and the machine's MemAvailable.
At the end: medians, the memory per lab (process RSS, and MemAvailable lost per lab, which also
counts the kernel's share: namespaces, veths, sockets), and the time of `lab down --all` with a
check that nothing of any class lab is left.

wireguard-go runs as a user of each node's own, so the per-user inotify limit
(fs.inotify.max_user_instances, 128 here) that used to stop a machine at ~40 labs does not
apply; no host sysctl is changed. Only labs named classK are made; if other labs are up when it
starts, it removes its own labs by name instead of `--all` (never other people's).
Run as root:  python3 bench/class_labs.py [--labs 50]
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


def run(args: list[str], timeout: float = 300) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run(WGT + args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t, r


def mem_available_mb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return 0.0


def lab_rss_mb(lab: str) -> float:
    """Resident memory of every process living in one of the lab's namespaces."""
    inodes = set()
    for p in os.listdir("/run/netns"):
        if p.startswith(f"wgt-{lab}-"):
            inodes.add(os.stat(f"/run/netns/{p}").st_ino)
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def labs_up() -> list[str]:
    return sorted(os.listdir("/run/wgtrace")) if os.path.isdir("/run/wgtrace") else []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labs", type=int, default=50)
    a = ap.parse_args()
    others = [n for n in labs_up() if not n.startswith("class") and os.path.isdir(f"/run/wgtrace/{n}")]
    names = [f"class{i}" for i in range(1, a.labs + 1)]
    if any(os.path.exists(f"/run/wgtrace/{n}") for n in names):
        print("class labs are up already: remove them first", file=sys.stderr)
        return 2
    base = mem_available_mb()
    ups, rss = [], []
    try:
        print(f"{'lab':>8} | {'up s':>6} | {'diagnose':>9} | {'RSS MiB':>7} | {'MemAvailable MiB':>16}")
        for n in names:
            t, r = run(["lab", "up", "--name", n])
            if r.returncode != 0:
                print(f"{n}: lab up failed: {r.stderr.strip()}", file=sys.stderr)
                return 1
            _, d = run(["diagnose", "home", "target", "--lab", n])
            if d.returncode != 0:
                print(f"{n}: home does not reach target:\n{d.stdout}", file=sys.stderr)
                return 1
            ups.append(t)
            rss.append(lab_rss_mb(n))
            print(f"{n:>8} | {t:6.2f} | {'reachable':>9} | {rss[-1]:7.1f} | {mem_available_mb():16.0f}")
        lost = (base - mem_available_mb()) / len(names)
        print(f"\n{len(names)} labs up at once, each reaching target.")
        print(f"lab up: median {statistics.median(ups):.2f} s (min {min(ups):.2f}, max {max(ups):.2f}); "
              f"first 5 {statistics.median(ups[:5]):.2f} s, last 5 {statistics.median(ups[-5:]):.2f} s")
        print(f"memory per lab: processes {statistics.median(rss):.1f} MiB (median RSS), "
              f"MemAvailable lost {lost:.1f} MiB per lab (kernel share included)")
    finally:
        if others:
            t = time.perf_counter()
            for n in names:
                run(["lab", "down", n])
            how = "lab down NAME for each (other labs were up: --all would remove them)"
        else:
            t = time.perf_counter()
            run(["lab", "down", "--all"], timeout=900)
            how = "lab down --all"
        took = time.perf_counter() - t
        left = [n for n in names if os.path.exists(f"/run/wgtrace/{n}")] + \
            [p for p in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else []) if p.startswith("wgt-class")]
        print(f"{how}: {took:.1f} s; left behind: {left or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
