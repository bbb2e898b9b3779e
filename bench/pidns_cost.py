#!/usr/bin/env python3
"""What a PID namespace per node costs: a class of N seed labs, with and without them.

The plain baseline is the same program before nodes had PID namespaces (every command got a
fresh mount namespace, nodes shared the machine's process table), as a checkout of its own:
    git archive 2e0443d | tar -x -C /tmp/wgt-nopidns      (the commit before PID namespaces)
    python3 bench/pidns_cost.py --baseline /tmp/wgt-nopidns [--labs 50] [--rounds 2]
For each round and each of the two trees (their order alternates), it brings up N seed labs
one after another (``python3 -m wgtrace lab up``, timed, run from that tree), and with all N up:
the memory they take (MemAvailable lost per lab, which counts the kernel's share too but moves
with whatever else the machine does; the kernel's own: slab, kernel stacks, page tables; and the
proportional set size of the labs' processes), the processes per lab, one ``check`` on the first
and the last lab; then the time of one command run in a node from Python (``node.run(["true"])``,
where the per-command namespaces are made or joined), of ``lab_up()`` in process for five more
labs (no interpreter start, which dominates the command's time and its noise), and each ``lab down`` (timed), checking
that nothing of them is left. It prints medians per tree and the ratios.

Only labs named <prefix>b<K> / <prefix>p<K> are made and removed (never other people's). Run as root.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RUN_IN_NODE = """
import statistics, sys, time
from wgtrace.lab.runtime import load_state
h = load_state(sys.argv[1]).node("home")
ts = []
for _ in range(100):
    t = time.perf_counter(); h.run(["true"]); ts.append(time.perf_counter() - t)
print(statistics.median(ts))
"""

UP_IN_PROCESS = """
import statistics, sys, time
from wgtrace.lab.build import lab_up
from wgtrace.lab.teardown import lab_down
try:
    from wgtrace.spec.labfile import load_lab
except ImportError:
    from wgtrace.model.labfile import load_lab
ups = []
for i in range(5):
    lab = load_lab("seed", rename=f"{sys.argv[1]}{i}")
    t = time.perf_counter(); lab_up(lab); ups.append(time.perf_counter() - t)
    lab_down(lab.name)
print(statistics.median(ups))
"""


def wgt(tree: str, args: list[str], timeout: float = 300) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "wgtrace", *args], cwd=tree, capture_output=True,
                       text=True, timeout=timeout)
    return time.perf_counter() - t, r


def meminfo_mb(*keys: str) -> float:
    total = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.split(":")[0] in keys:
                total += int(line.split()[1])
    return total / 1024


def mem_available_mb() -> float:
    return meminfo_mb("MemAvailable")


KERNEL = ("Slab", "KernelStack", "PageTables")     # what namespaces, mounts, tasks cost the kernel


def lab_processes(lab: str) -> list[str]:
    """Every process in one of the lab's network namespaces (a node's init is in its node's)."""
    inodes = {os.stat(f"/run/netns/{p}").st_ino for p in os.listdir("/run/netns") if p.startswith(f"wgt-{lab}-")}
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                    out.append(pid)
            except OSError:
                pass
    return out


def pss_mb(pids: list[str]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def left_of(names: list[str]) -> list[str]:
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    return [n for n in names if os.path.exists(f"/run/wgtrace/{n}")] + \
        [p for p in netns if any(p.startswith(f"wgt-{n}-") for n in names)]


def one_class(tree: str, names: list[str]) -> dict:
    base, kbase = mem_available_mb(), meminfo_mb(*KERNEL)
    ups, pss, procs = [], [], []
    try:
        for n in names:
            t, r = wgt(tree, ["lab", "up", "--name", n])
            if r.returncode != 0:
                raise SystemExit(f"{n}: lab up failed: {r.stderr.strip()}")
            ups.append(t)
        lost = (base - mem_available_mb()) / len(names)
        kernel = (meminfo_mb(*KERNEL) - kbase) / len(names)
        for n in names:
            p = lab_processes(n)
            procs.append(len(p))
            pss.append(pss_mb(p))
        for n in (names[0], names[-1]):
            _, r = wgt(tree, ["check", "--lab", n])
            if r.returncode != 0:
                raise SystemExit(f"{n}: check failed:\n{r.stdout}")
        r = subprocess.run([sys.executable, "-c", RUN_IN_NODE, names[0]], cwd=tree, capture_output=True, text=True)
        run_s = float(r.stdout) if r.returncode == 0 else float("nan")
        r = subprocess.run([sys.executable, "-c", UP_IN_PROCESS, names[0][:-1] + "x"], cwd=tree,
                           capture_output=True, text=True)
        up_in = float(r.stdout) if r.returncode == 0 else float("nan")
    finally:
        downs = []
        for n in names:
            t, _ = wgt(tree, ["lab", "down", n])
            downs.append(t)
        left = left_of(names)
        if left:
            raise SystemExit(f"left behind: {left}")
    return {"up": statistics.median(ups), "up_first5": statistics.median(ups[:5]),
            "up_last5": statistics.median(ups[-5:]), "down": statistics.median(downs), "lost": lost, "kernel": kernel,
            "pss": statistics.median(pss), "procs": statistics.median(procs), "run": run_s, "up_in": up_in}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="a checkout of wgtrace without PID namespaces")
    ap.add_argument("--labs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--prefix", default="zpc")
    a = ap.parse_args()
    trees = {"without": os.path.abspath(a.baseline), "with": HERE}
    results: dict[str, list[dict]] = {k: [] for k in trees}
    for rnd in range(a.rounds):
        order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
        for kind in order:
            names = [f"{a.prefix}{kind[0]}{i}" for i in range(1, a.labs + 1)]
            res = one_class(trees[kind], names)
            results[kind].append(res)
            print(f"round {rnd + 1}, {kind:>7} PID namespaces: lab up {res['up']:.3f} s (first 5 {res['up_first5']:.3f}, "
                  f"last 5 {res['up_last5']:.3f}), lab down {res['down']:.3f} s, MemAvailable lost "
                  f"{res['lost']:.1f} MiB/lab, kernel {res['kernel']:.1f} MiB/lab, PSS {res['pss']:.1f} MiB/lab, {res['procs']:.0f} processes/lab, "
                  f"node.run(true) {res['run'] * 1000:.2f} ms, lab_up() in process {res['up_in']:.3f} s", flush=True)
        w, p = results["without"][-1], results["with"][-1]
        if len(results["without"]) == len(results["with"]):      # paired: the machine's load drifts
            print(f"round {rnd + 1}, with/without: lab up {p['up'] / w['up']:.2f}, lab_up() in process "
                  f"{p['up_in'] / w['up_in']:.2f}, kernel memory {p['kernel'] / w['kernel']:.2f}", flush=True)
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in results.items()}
    print(f"\n{a.labs} seed labs up at once, medians of {a.rounds} round(s):")
    print(f"{'':24} {'without':>9} {'with':>9} {'ratio':>6}")
    for f, label, scale, unit in (("up", "lab up", 1, "s"), ("up_last5", "lab up, last 5", 1, "s"),
                                  ("down", "lab down", 1, "s"), ("lost", "MemAvailable lost/lab", 1, "MiB"),
                                  ("kernel", "kernel memory/lab", 1, "MiB"),
                                  ("pss", "process PSS/lab", 1, "MiB"), ("procs", "processes/lab", 1, ""),
                                  ("run", "node.run(['true'])", 1000, "ms"),
                                  ("up_in", "lab_up() in process", 1, "s")):
        w, p = med["without"][f] * scale, med["with"][f] * scale
        print(f"{label + (' ' + unit if unit else ''):24} {w:9.3f} {p:9.3f} {p / w if w else float('nan'):6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
