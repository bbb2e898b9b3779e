#!/usr/bin/env python3
"""What making a node costs, in process: the seed's 7 nodes with PID, mount and UTS namespaces
and an init each (nodes/nsinit.create_nodes) against network namespaces alone, as the commit
before PID namespaces made them (its nodes/nsexec.create_netns, loaded from a checkout).

    git archive 2e0443d | tar -x -C /tmp/wgt-nopidns
    python3 bench/pidns_nodes.py --baseline /tmp/wgt-nopidns [--rounds 12]

The two alternate; the calling process holds 50 MB, about what ``lab up``'s Python holds (a fork
copies its page tables). Everything made is removed after each round (names zzc<K>-<N>).
Run as root.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import select
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from wgtrace.nodes import nsinit                 # noqa: E402
from wgtrace.nodes.nsexec import MNT_DETACH, _libc  # noqa: E402


def specs_for(i: int) -> tuple[str, list]:
    base = tempfile.mkdtemp(dir="/run")
    specs = []
    for k in range(7):
        d = f"{base}/n{k}"
        os.makedirs(d + "/run")
        os.makedirs(d + "/root")
        specs.append(nsinit.NodeSpec(f"/run/netns/zzc{i}-{k}", d + "/run", d + "/root", f"n{k}", [],
                                     {"WGTRACE_LAB": f"zzc{i}"}))
    return base, specs


def remove(base: str, specs: list, inits: list[int]) -> None:
    for p in inits:
        fd = os.pidfd_open(p)
        os.kill(p, 9)
        select.select([fd], [], [], 5)
        os.close(fd)
    for s in specs:
        _libc.umount2(s.netns_path.encode(), MNT_DETACH)
        os.unlink(s.netns_path)
    shutil.rmtree(base)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--rounds", type=int, default=12)
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("old_nsexec", os.path.join(a.baseline, "wgtrace/nodes/nsexec.py"))
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    held = bytearray(50_000_000)
    plain, full = [], []
    catatonit = shutil.which("catatonit") or "/usr/bin/catatonit"
    for i in range(a.rounds):
        base, specs = specs_for(i)
        t = time.perf_counter()
        old.create_netns([s.netns_path for s in specs])
        plain.append(time.perf_counter() - t)
        remove(base, specs, [])
        base, specs = specs_for(i)
        t = time.perf_counter()
        inits = nsinit.create_nodes(specs, catatonit)
        full.append(time.perf_counter() - t)
        remove(base, specs, inits)
    p, f = statistics.median(plain) * 1000, statistics.median(full) * 1000
    print(f"7 nodes, median of {a.rounds}: network namespaces only {p:.1f} ms; with PID, mount and UTS "
          f"namespaces and an init each {f:.1f} ms ({(f - p) / 7:.1f} ms more per node)")
    del held
    return 0


if __name__ == "__main__":
    sys.exit(main())
