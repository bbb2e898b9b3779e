#!/usr/bin/env python3
"""Time building and removing the seed network: wgtrace vs a plain shell script.

Each round runs, one after the other,
    python3 -m wgtrace lab up --name bench1   then   python3 -m wgtrace lab down bench1
    bash bench/plain_seed.sh up bench2        then   bash bench/plain_seed.sh down bench2
and times every command with time.perf_counter around subprocess.run. An up+down pair is the
sum of its two commands. It prints the rounds, the medians and the ratio wgtrace/plain of the
median pairs (target: <= 0.8), and the peak RSS of each wgtrace `lab up` process.

Peak RSS comes from /usr/bin/time -f %M (ru_maxrss of the process, including the children it
waited for) when that exists; otherwise from resource.getrusage(RUSAGE_CHILDREN).ru_maxrss,
which is a running maximum over all children reaped so far, so it is only shown when this
`lab up` raised it.

Only the labs bench1 (wgtrace) and bench2 (plain) are made or removed; if either already exists
the benchmark refuses to start. Run as root, from anywhere:  python3 bench/lab_updown.py
"""
from __future__ import annotations

import argparse
import glob
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAIN = os.path.join(REPO, "bench", "plain_seed.sh")
WGT_LAB, PLAIN_LAB = "bench1", "bench2"
TIMEOUT = 120.0

WGT_UP = [sys.executable, "-m", "wgtrace", "lab", "up", "--name", WGT_LAB]
WGT_DOWN = [sys.executable, "-m", "wgtrace", "lab", "down", WGT_LAB]
PLAIN_UP = ["bash", PLAIN, "up", PLAIN_LAB]
PLAIN_DOWN = ["bash", PLAIN, "down", PLAIN_LAB]
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


class Failed(Exception):
    pass


def run(argv: list[str], rss: bool = False) -> tuple[float, int | None]:
    """Run argv from the repository; return (wall seconds, peak RSS in KiB or None)."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as rssfile:
        cmd = argv
        if rss and GNU_TIME:
            cmd = [GNU_TIME, "-f", "%M", "-o", rssfile.name, *argv]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        # Output goes to a file, not a pipe: daemons started by the command must not hold it.
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=TIMEOUT)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            out.seek(0)
            raise Failed(f"{' '.join(argv)} exited with {r.returncode}:\n"
                         + out.read().decode(errors="replace"))
        peak = None
        if rss and GNU_TIME:
            text = rssfile.read().strip().splitlines()
            peak = int(text[-1]) if text and text[-1].isdigit() else None
        elif rss:
            after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            peak = after if after > before else None
        return wall, peak


def exists(lab_glob_netns: str, run_dir: str) -> bool:
    return bool(glob.glob(lab_glob_netns)) or os.path.exists(run_dir)


def wgt_exists() -> bool:
    return exists(f"/run/netns/wgt-{WGT_LAB}-*", f"/run/wgtrace/{WGT_LAB}")


def plain_exists() -> bool:
    return exists(f"/run/netns/pln-{PLAIN_LAB}-*", f"/run/pln-{PLAIN_LAB}")


def cleanup() -> None:
    """Remove bench1/bench2 if a failed round left them (and only those)."""
    if wgt_exists():
        subprocess.run(WGT_DOWN, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=TIMEOUT)
    if plain_exists():
        subprocess.run(PLAIN_DOWN, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=TIMEOUT)


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="number of rounds (default 5)")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if os.geteuid() != 0:
        print("lab_updown: needs root", file=sys.stderr)
        return 1
    if shutil.which("bash") is None:
        print("lab_updown: needs bash", file=sys.stderr)
        return 1
    if wgt_exists() or plain_exists():
        print(f"lab_updown: {WGT_LAB} or {PLAIN_LAB} is already up; remove it first "
              f"(python3 -m wgtrace lab down {WGT_LAB}; bash bench/plain_seed.sh down {PLAIN_LAB})",
              file=sys.stderr)
        return 1

    rows = []   # (wgt_up, wgt_down, plain_up, plain_down, rss_kib)
    head = (f"{'round':>6} | {'wgtrace up':>10} {'down':>7} {'pair':>7} | "
            f"{'plain up':>8} {'down':>7} {'pair':>7} | {'ratio':>5} | {'wgtrace up peak RSS':>19}")
    print(f"seed lab up+down, {args.rounds} rounds; wall seconds per command "
          f"(RSS via {'/usr/bin/time %M' if GNU_TIME else 'getrusage(RUSAGE_CHILDREN)'})")
    print(head)
    print("-" * len(head))
    try:
        for i in range(1, args.rounds + 1):
            wu, rss = run(WGT_UP, rss=True)
            wd, _ = run(WGT_DOWN)
            pu, _ = run(PLAIN_UP)
            pd, _ = run(PLAIN_DOWN)
            rows.append((wu, wd, pu, pd, rss))
            print(f"{i:>6} | {wu:>10.3f} {wd:>7.3f} {wu + wd:>7.3f} | "
                  f"{pu:>8.3f} {pd:>7.3f} {pu + pd:>7.3f} | {(wu + wd) / (pu + pd):>5.2f} | "
                  f"{mib(rss):>19}", flush=True)
    except (Failed, subprocess.TimeoutExpired) as e:
        print(f"lab_updown: {e}", file=sys.stderr)
        cleanup()
        return 1
    except KeyboardInterrupt:
        cleanup()
        return 130

    med = [statistics.median(col) for col in zip(*[r[:4] for r in rows])]
    wpair = statistics.median(r[0] + r[1] for r in rows)
    ppair = statistics.median(r[2] + r[3] for r in rows)
    rss_vals = [r[4] for r in rows if r[4] is not None]
    rss_med = int(statistics.median(rss_vals)) if rss_vals else None
    print("-" * len(head))
    print(f"{'median':>6} | {med[0]:>10.3f} {med[1]:>7.3f} {wpair:>7.3f} | "
          f"{med[2]:>8.3f} {med[3]:>7.3f} {ppair:>7.3f} | {wpair / ppair:>5.2f} | {mib(rss_med):>19}")
    ratio = wpair / ppair
    print(f"ratio wgtrace/plain (median up+down pair): {ratio:.2f}  "
          f"(target <= 0.8: {'met' if ratio <= 0.8 else 'NOT met'})")
    if rss_vals:
        print(f"wgtrace lab up peak RSS: median {mib(rss_med)}, max {mib(max(rss_vals))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
