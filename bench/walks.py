#!/usr/bin/env python3
"""Time every lesson's walkthrough: `wgtrace walk LESSON --yes` in each language, against
building and removing the same lab complete (`lab up` + `lab down`), the plain baseline.

A walk builds stage 0, types every stage, diagnoses one probe after each and a TCP probe at the
end, then takes the lab down; its cost over the baseline is what the stages' probes add. Each
round runs, one after the other, for every lesson: the baseline, then the walk in each language;
every command is timed with time.perf_counter around subprocess.run. It prints the rounds and
the medians, and each walk's median against the 20 s a walk may take here.

Only labs named benchwalk* are made or removed; if one already exists the benchmark refuses to
start. Run as root, from anywhere:  python3 bench/walks.py [--rounds 3] [LESSON ...]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
TIMEOUT = 180.0
TARGET = 20.0


def run(argv: list[str]) -> float:
    with tempfile.TemporaryFile() as out:      # a file, not a pipe: daemons must not hold it
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "wgtrace", *argv], cwd=REPO, stdin=subprocess.DEVNULL,
                           stdout=out, stderr=subprocess.STDOUT, timeout=TIMEOUT)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            out.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed ({r.returncode}):\n{out.read().decode()[-2000:]}")
        return wall


def main() -> None:
    from wgtrace.teach.lessons import available_lessons, load_lesson
    from wgtrace.texts import LANGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lessons", nargs="*", default=available_lessons())
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the walks build real labs")
    from wgtrace.lab.runtime import RUN_ROOT
    if RUN_ROOT.is_dir() and any(p.name.startswith("benchwalk") for p in RUN_ROOT.iterdir()):
        raise SystemExit("a benchwalk* lab is up already; take it down first")
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for i, name in enumerate(args.lessons):
            lab, lab_name = load_lesson(name).lab, f"benchwalk{i}"
            up = run(["lab", "up", lab, "--name", lab_name])
            times.setdefault((name, "lab up+down"), []).append(up + run(["lab", "down", lab_name]))
            for lang in LANGS:
                times.setdefault((name, lang), []).append(
                    run(["walk", name, "--yes", "--lang", lang, "--name", lab_name]))
        print(f"round {r + 1}: " + ", ".join(f"{n} {k} {v[-1]:.1f} s" for (n, k), v in times.items()), flush=True)
    print()
    print(f"{'lesson':<12} {'stages':>6} {'lab up+down':>12} " + " ".join(f"{'walk ' + l:>9}" for l in LANGS))
    for name in args.lessons:
        med = {k: statistics.median(v) for (n, k), v in times.items() if n == name}
        print(f"{name:<12} {len(load_lesson(name).stages):>6} {med['lab up+down']:>10.1f} s "
              + " ".join(f"{med[l]:>7.1f} s" for l in LANGS)
              + ("" if all(med[l] < TARGET for l in LANGS) else f"   over the {TARGET:.0f} s target"))


if __name__ == "__main__":
    main()
