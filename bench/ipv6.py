#!/usr/bin/env python3
"""IPv6 against IPv4 on the same pair of the same lab, and a dual-stack lab up against its twin.

Labs (only these names are made or removed; if one exists the benchmark refuses to start):
    bench6ok   labs/site2site.toml as it is (dual stack): pc1 reaches pc2 in both families
    bench6bad  the same with forwarding off on gw2 in both families (net.ipv4.ip_forward=0,
               net.ipv6.conf.all.forwarding=0): the probe enters gw2 and never leaves, either family
    bench6up   built and removed again and again, from site2site.toml and from its IPv4 twin
               (the same file with every IPv6 address, route, rule, sysctl, allowed-ip and
               check taken out, written to a temporary directory)

Each round times, with time.perf_counter around subprocess.run, the whole commands
    trace      python3 -m wgtrace trace pc1 pc2 -4|-6 --lab bench6ok
    diagnose   python3 -m wgtrace diagnose pc1 pc2 -4|-6 --lab bench6ok|bench6bad
    baseline   ip netns exec wgt-bench6ok-pc1 ping -c1 -W1 10.2.0.10 | -6 ... fd10:2::10
    lab up     python3 -m wgtrace lab up FILE --name bench6up, then lab down bench6up (timed apart)
in an order rotated by one place each round and reversed every other round. Every outcome is
checked (reachable: exit 0; broken: exit 1 and stopped at gw2; ping answered). Then the same
trace and diagnoses in this process, 4 x rounds times each, interleaved (no command start-up in
the figure: on a shared machine that start-up's noise is larger than a family's difference). It
prints each round, the medians, and the ratios IPv6/IPv4 per measurement (target: within 10%,
0.90..1.10) and against the plain baseline of the same family.

All labs are taken down in a `finally` (also on an error, Ctrl-C or SIGTERM).
Run as root, from anywhere:  python3 bench/ipv6.py [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OK, BAD, UP = "bench6ok", "bench6bad", "bench6up"
DST = {4: "10.2.0.10", 6: "fd10:2::10"}             # pc2 in labs/site2site.toml
WGT = [sys.executable, "-m", "wgtrace"]
TIMEOUT = 120.0


class Failed(Exception):
    pass


class Terminated(BaseException):
    pass


def run(argv: list[str], expect: int | None = 0, match: str | None = None) -> float:
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        r = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                           timeout=TIMEOUT)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    if (expect is not None and r.returncode != expect) or (match and not re.search(match, text)):
        raise Failed(f"{' '.join(argv)}: exit {r.returncode} (expected {expect}, output to match {match!r}):\n{text}")
    return wall


def exists(lab: str) -> bool:
    return os.path.exists(f"/run/wgtrace/{lab}") or any(n.startswith(f"wgt-{lab}-") for n in
                                                         (os.listdir("/run/netns") if os.path.isdir("/run/netns") else []))


def ipv4_twin(path: str, out_dir: str) -> str:
    """The lab file with IPv6 taken out, as TOML again (model/tomlout writes lab files)."""
    sys.path.insert(0, REPO)
    from wgtrace.addr import family
    from wgtrace.model.tomlout import lab_toml
    data = tomllib.loads(open(path).read())

    def v4(items):
        return [x for x in items if family(x) != 6]
    for node in data["nodes"].values():
        addrs = node.get("addresses", {})
        for k, v in list(addrs.items()):
            kept = v4(v if isinstance(v, list) else [v])
            if kept:
                addrs[k] = kept
            else:
                del addrs[k]
        node["routes"] = [r for r in node.get("routes", []) if r.get("dst") != "::/0" and family(r.get("dst")) != 6
                          and family(r.get("via")) != 6]
        node["sysctl"] = [s for s in node.get("sysctl", []) if not s["key"].startswith("net.ipv6.")]
        node["rules"] = [r for r in node.get("rules", []) if r.get("family") != 6]
        node.pop("ip6tables", None)
        node.pop("policies6", None)
        for w in node.get("wireguard", {}).values():
            w["address"] = v4(w["address"] if isinstance(w["address"], list) else [w["address"]])
            for p in w.get("peers", []):
                p["allowed_ips"] = v4(p.get("allowed_ips", []))
        for k in [k for k, v in node.items() if v in ([], {})]:
            del node[k]
    data["checks"] = [c for c in data.get("checks", []) if c.get("family") != 6]
    twin = os.path.join(out_dir, "site2site.toml")
    with open(twin, "w") as f:
        f.write(lab_toml(data))
    return twin


def in_process(n: int) -> dict[str, list[float]]:
    """trace and diagnose pc1 -> pc2 in both families, interleaved, in this process: what the
    family costs without the noise of starting a command."""
    sys.path.insert(0, REPO)
    from wgtrace.diagnose.run import diagnose
    from wgtrace.opener import open_network
    from wgtrace.trace.run import run_trace
    out: dict[str, list[float]] = {}
    with open_network(lab=OK) as ok, open_network(lab=BAD) as bad:
        for i in range(n):
            for f in ((4, 6) if i % 2 else (6, 4)):
                for name, fn, want in (("trace", lambda: run_trace(ok, "pc1", "pc2", family=f).reachable, True),
                                       ("diagnose ok", lambda: diagnose(ok, "pc1", "pc2", family=f).reachable, True),
                                       ("diagnose bad", lambda: diagnose(bad, "pc1", "pc2", family=f).reachable, False)):
                    t0 = time.perf_counter()
                    if fn() != want:
                        raise Failed(f"{name} v{f} in process: not {'reachable' if want else 'stopped'}")
                    out.setdefault(f"{name} v{f}", []).append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root: the benchmark builds labs", file=sys.stderr)
        return 2
    for lab in (OK, BAD, UP):
        if exists(lab):
            print(f"lab {lab} exists already: take it down first (wgtrace lab down {lab})", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(Terminated()))
    tmp = tempfile.mkdtemp(prefix="bench6-")
    dual = os.path.join(REPO, "labs", "site2site.toml")
    twin = ipv4_twin(dual, tmp)
    made: list[str] = []
    times: dict[str, list[float]] = {}
    try:
        for lab in (OK, BAD):
            made.append(lab)
            run([*WGT, "lab", "up", dual, "--name", lab])
        for argv in (["sysctl", "-w", "net.ipv4.ip_forward=0"], ["sysctl", "-w", "net.ipv6.conf.all.forwarding=0"]):
            run([*WGT, "lab", "exec", "--lab", BAD, "gw2", "--", *argv])
        jobs = {}
        for f in (4, 6):
            jobs[f"trace v{f}"] = lambda f=f: run([*WGT, "trace", "pc1", "pc2", f"-{f}", "--lab", OK])
            jobs[f"diagnose ok v{f}"] = lambda f=f: run([*WGT, "diagnose", "pc1", "pc2", f"-{f}", "--lab", OK],
                                                        match=r"\breachable\b")
            jobs[f"diagnose bad v{f}"] = lambda f=f: run([*WGT, "diagnose", "pc1", "pc2", f"-{f}", "--lab", BAD], 1,
                                                         match=r"forwarding-disabled.*\n.*gw2")
            jobs[f"baseline v{f}"] = lambda f=f: run(["ip", "netns", "exec", f"wgt-{OK}-pc1", "ping", f"-{f}",
                                                      "-c1", "-W1", DST[f]])
        for name, path in (("dual", dual), ("twin", twin)):
            def up(path=path, name=name):
                made.append(UP)
                t = run([*WGT, "lab", "up", path, "--name", UP])
                times.setdefault(f"lab down {name}", []).append(run([*WGT, "lab", "down", UP]))
                made.remove(UP)
                return t
            jobs[f"lab up {name}"] = up
        names = list(jobs)
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            if rnd % 2:
                order.reverse()
            row = []
            for n in order:
                t = jobs[n]()
                times.setdefault(n, []).append(t)
                row.append(f"{n} {t:.3f}")
            print(f"round {rnd + 1}: " + ", ".join(row), flush=True)
        inproc = in_process(args.rounds * 4)
        med = {n: statistics.median(v) for n, v in times.items()}
        print("\nmedians (s):")
        for n in sorted(med):
            print(f"  {n:<20} {med[n]:.3f}  (n={len(times[n])})")
        print("\nIPv6 / IPv4 (target 0.90..1.10):")
        for what in ("trace", "diagnose ok", "diagnose bad", "baseline"):
            r = med[f"{what} v6"] / med[f"{what} v4"]
            print(f"  {what:<14} {r:.2f}x  {'ok' if 0.9 <= r <= 1.1 else 'outside the target'}")
        print("\nagainst the plain baseline of the same family (ping -c1):")
        for f in (4, 6):
            print(f"  v{f}: trace {med[f'trace v{f}'] / med[f'baseline v{f}']:.2f}x, "
                  f"diagnose {med[f'diagnose ok v{f}'] / med[f'baseline v{f}']:.2f}x")
        print("\nin process (one Python, the lab opened once; without the 0.2 s a command spends starting):")
        for what in ("trace", "diagnose ok", "diagnose bad"):
            a4, a6 = (statistics.median(inproc[f"{what} v{f}"]) for f in (4, 6))
            print(f"  {what:<14} v4 {a4 * 1000:.1f} ms, v6 {a6 * 1000:.1f} ms: {a6 / a4:.2f}x  "
                  f"{'ok' if 0.9 <= a6 / a4 <= 1.1 else 'outside the target'}")
        print(f"\nlab up, dual stack / IPv4 twin: {med['lab up dual'] / med['lab up twin']:.2f}x "
              f"({med['lab up dual']:.2f} s / {med['lab up twin']:.2f} s); "
              f"lab down {med['lab down dual']:.2f} s / {med['lab down twin']:.2f} s")
        return 0
    except (Failed, Terminated, KeyboardInterrupt) as e:
        print(f"benchmark stopped: {e}", file=sys.stderr)
        return 1
    finally:
        for lab in dict.fromkeys(made):
            subprocess.run([*WGT, "lab", "down", lab], cwd=REPO, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TIMEOUT)
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    sys.exit(main())
