#!/usr/bin/env python3
"""What reading native nftables costs a diagnosis: the firewall read of every node of a lab (it
runs twice per probe, before and after), with nft's ruleset beside iptables' and ip6tables'
against the plain baseline of iptables-save and ip6tables-save alone, and the parse of what they
printed; then a whole diagnosis of the lab's probe.

It brings up its own lab (the nftables lab by default, under a fresh name) and takes it down.
Run as root:  python3 bench/nft_read.py [--lab nftables] [--rounds 20]
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wgtrace.diagnose import facts, firewall  # noqa: E402
from wgtrace.diagnose.run import diagnose  # noqa: E402
from wgtrace.lab.build import lab_up  # noqa: E402
from wgtrace.lab.teardown import lab_down  # noqa: E402
from wgtrace.model.labfile import load_lab  # noqa: E402
from wgtrace.opener import open_network  # noqa: E402


def timed(fns: dict, rounds: int) -> dict[str, float]:
    """Median time of each function, run in turns (a busy machine slows them alike)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lab", default="nftables")
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    model = load_lab(a.lab, rename="bn" + secrets.token_hex(3))
    lab_up(model)
    try:
        with open_network(lab=model.name) as net:
            nodes = list(net.nodes.values())
            reads = firewall.reads()
            plain = {k: v for k, v in reads.items() if k.startswith("iptables")}

            def read(which):
                return facts._run_everywhere([(k, h, argv) for h in nodes for k, argv in which.items()])
            out = read(reads)
            before = {h.name: firewall.parse({k: v.get(h.name) for k, v in out.items()}) for h in nodes}
            t = timed({"base": lambda: read(plain), "full": lambda: read(reads),
                       "after": lambda: facts.read_firewalls(nodes, before),
                       "parse": lambda: [firewall.parse({k: v.get(h.name) for k, v in out.items()}) for h in nodes]},
                      a.rounds)
            base, full, after, parse = t["base"], t["full"], t["after"], t["parse"]
            rules = sum(len(r) for r in before.values())
            src, dst = model.probe_src, model.probe_dst
            diag = timed({"d": lambda: diagnose(net, src, dst)}, max(3, a.rounds // 4))["d"]
        print(f"lab {a.lab}: {len(nodes)} nodes, {rules} rules and policies read")
        print(f"firewall read of every node, iptables-save + ip6tables-save (baseline): {base * 1000:.1f} ms")
        print(f"  the same with nft -j list ruleset beside them:                       {full * 1000:.1f} ms "
              f"({full / base:.2f}x)")
        print(f"  after the probe (nft's ruleset only where a native rule counts):    {after * 1000:.1f} ms "
              f"({after / base:.2f}x)")
        print(f"parse of every node's outputs:                                         {parse * 1000:.1f} ms")
        print(f"diagnose {src} -> {dst} (two firewall reads among everything else):       {diag * 1000:.0f} ms")
    finally:
        lab_down(model.name)


if __name__ == "__main__":
    main()
