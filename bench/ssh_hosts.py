#!/usr/bin/env python3
"""Time `wgtrace diagnose --hosts` over real SSH against the lab backend on the same lab and faults,
on 4, 7 and 50 hosts, and count the SSH sessions each host's sshd holds at its peak.

Two labs with a controller `ctl` on a management network and an sshd on every node (stock
defaults: MaxSessions 10), prepared as tests/ssh_support.py does (a key in ctl, authorized_keys in
every node's own home, a hosts file in ctl's home written like docs/hosts.md's first example: no
`ignore`, wgtrace finds the management network by itself):

  7 hosts   tests/labs/seedssh.toml, every seed node in the hosts file; probe home -> target
  4 hosts   the same lab, only the WireGuard peers and target in the hosts file; the lab backend
            with --only the same four (the same view)
  50 hosts  tests/labs/hubssh.toml with spokes=24 (internet, relay, 24 spokes, 24 LAN hosts);
            probe h1 -> h24

For each: healthy, and each fault (injected with wgtrace.lab.inject, the lab rebuilt before each),
`python3 -m wgtrace diagnose SRC DST --hosts FILE --json` run inside ctl (`lab exec ctl`) against
`python3 -m wgtrace diagnose SRC DST_IP --lab LAB --json` (plus --only for 4 hosts). Times are
wall clock around the whole command, medians of --rounds runs; each run's verdict is checked (a
wrong one aborts). While the SSH runs go, every node's sshd is watched from the machine (its
sessions: children of its per-connection process; its tcpdump): the peak of sessions on any host,
and how many hosts were captured on. Only the labs named by --name are made and removed.
Run as root:  python3 bench/ssh_hosts.py [--rounds N] [--name NAME] [--only 4,7,50]
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
SEED_ORDER = ["home", "target", "bcc", "company", "home-router", "company-router", "internet"]
PEERS = ["bcc", "home", "company", "target"]
SPOKES = 24


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - t, r


def lab_cmd(lab: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "wgtrace", *args, "--lab", lab]


def ctl_cmd(lab: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "wgtrace", "lab", "exec", "ctl", "--lab", lab, "--", "env", f"PYTHONPATH={REPO}",
            sys.executable, "-m", "wgtrace", *args]


def check(r: subprocess.CompletedProcess, cause: str | None, what: str) -> None:
    ok = r.returncode == (1 if cause else 0)
    if ok and cause:
        ok = json.loads(r.stdout)["cause"] == cause
    if not ok:
        raise SystemExit(f"{what}: unexpected outcome (exit {r.returncode}): {r.stdout[-400:]} {r.stderr[-400:]}")


def median(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--name", default="sshbench")
    ap.add_argument("--only", default="4,7,50")
    a = ap.parse_args()
    import ssh_support as S
    from plain_net import Sessions
    from wgtrace.lab.build import lab_up
    from wgtrace.lab.inject import inject
    from wgtrace.lab.runtime import load_state
    from wgtrace.lab.teardown import lab_down
    from wgtrace.model.faults import Fault, Step, find_fault, load_faults
    from wgtrace.model.labfile import find_lab, load_lab
    if load_state(a.name) is not None:
        raise SystemExit(f"a lab {a.name!r} is up already: take it down or pass --name")
    seed_faults = load_faults(str(find_lab("seed")))
    hub_fault = Fault("relay-last-spoke-vpn-only", "", (Step("relay", ("wg", "set", "wg0", "peer", f"{{key.spoke{SPOKES}}}",
                      "allowed-ips", f"10.99.1.{SPOKES}/32")),), "wg-allowed-ips", "relay", "request")
    sizes = [int(x) for x in a.only.split(",")]
    cases = []              # (size, lab file, params, hosts, src, dst name, dst ip, only, fault)
    if 7 in sizes:
        cases += [(7, S.LAB_FILE, {}, SEED_ORDER, "home", "target", "10.10.13.61", None, f)
                  for f in [None] + [find_fault(seed_faults, n) for n in
                                     ("company-return-rule-missing", "bcc-route-missing", "home-wrong-key")]]
    if 4 in sizes:
        cases += [(4, S.LAB_FILE, {}, PEERS, "home", "target", "10.10.13.61", ",".join(PEERS), f)
                  for f in [None] + [find_fault(seed_faults, n) for n in
                                     ("company-return-rule-missing", "internet-drops-wireguard")]]
    if 50 in sizes:
        hub_file = os.path.join(REPO, "tests", "labs", "hubssh.toml")
        cases += [(50, hub_file, {"spokes": str(SPOKES)}, None, "h1", f"h{SPOKES}", f"10.100.{SPOKES}.10", None, f)
                  for f in (None, hub_fault)]
    results: dict[str, list[float]] = {}
    peaks: dict[str, tuple[int, int]] = {}
    try:
        for size, lab_file, params, names, src, dst, dst_ip, only, fault in cases:
            lab_down(a.name)
            model = load_lab(lab_file, rename=a.name, params=params)
            st = lab_up(model)
            nodes = [n for n in model.nodes if n != "ctl"]
            address = {n: model.nodes[n].address_of("mgmt0") for n in nodes}
            S.prepare(a.name, nodes=nodes, address=address)
            hosts = S.write_hosts(a.name, "bench.toml", nodes=names or nodes, address=address, ignore=False)
            if fault:
                inject(fault, st)
            label = f"{size} hosts, {fault.name if fault else 'healthy'}"
            cause = fault.cause if fault else None
            paths = {n: st.node(n).netns_path for n in nodes}
            for _ in range(a.rounds):
                with Sessions(paths) as s:
                    dt, r = timed(ctl_cmd(a.name, "diagnose", src, dst, "--hosts", hosts, "--json"))
                check(r, cause, f"ssh {label}")
                results.setdefault(f"ssh  {label}", []).append(dt)
                old = peaks.get(label, (0, 0))
                peaks[label] = (max(old[0], max(s.peak.values(), default=0)), max(old[1], len(s.captured)))
                dt, r = timed(lab_cmd(a.name, "diagnose", src, dst_ip, "--json", *(["--only", only] if only else [])))
                check(r, cause, f"lab {label}")
                results.setdefault(f"lab  {label}", []).append(dt)
            sh, lb = results[f"ssh  {label}"], results[f"lab  {label}"]
            print(f"{label}: ssh {median(sh)}, lab {median(lb)}, sessions at the peak {peaks[label][0]}, "
                  f"captured on {peaks[label][1]}", file=sys.stderr)
    finally:
        lab_down(a.name)
    width = max(len(k) for k in results)
    print(f"medians of {a.rounds} runs (wall clock of the whole command):")
    for k, xs in results.items():
        print(f"  {k:<{width}}  {median(xs)}")
    for label, (peak, captured) in peaks.items():
        s, l = statistics.median(results[f"ssh  {label}"]), statistics.median(results[f"lab  {label}"])
        print(f"  {label:<{width - 5}}  ssh / lab {s / l:.2f}x; SSH sessions per host at the peak: {peak}; "
              f"hosts captured on: {captured}")


if __name__ == "__main__":
    main()
