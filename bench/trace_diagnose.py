#!/usr/bin/env python3
"""Time `wgtrace trace` and `wgtrace diagnose` against sniffing every interface by hand.

Two labs are built from labs/seed.toml:
    benchok   the full lab (stage "complete"): home reaches target
    benchbad  at stage "bcc-forwarding": the probe enters bcc and never leaves it

Every round times, with time.perf_counter around subprocess.run, the whole commands
    trace     python3 -m wgtrace trace home target --lab LAB          (LAB = benchok, benchbad)
    diagnose  python3 -m wgtrace diagnose home target --lab LAB
and a BASELINE per lab, i.e. what a person does by hand:
    list the interfaces of every node (ip netns exec wgt-LAB-NODE ip -o link; lo and bridge
    ports, i.e. links with a master, are skipped) -- not timed; then, timed:
    start  ip netns exec wgt-LAB-NODE tcpdump -i IFACE -nn -c 100 --immediate-mode  on every
    one of them, all in parallel; wait until each has printed 'listening on' to stderr; run
    ip netns exec wgt-LAB-home ping -c1 -W1 10.10.13.61; SIGINT every tcpdump and wait for it.
    Baseline time = start of the first tcpdump .. the last tcpdump has exited. A baseline run
    only counts if tcpdump captured the probe (on home; on the reachable lab also on target):
    see TCPDUMP_EXTRA for why --immediate-mode is needed for that.
The six measurements of a round run one after the other; their order is rotated by one place
each round and reversed every other round, so no command always runs first or after the same
neighbour. Every run's outcome is checked (benchok: exit 0 / ping answered; benchbad: exit 1,
stopped at bcc / no answer); a wrong outcome aborts the benchmark.

It prints the rounds, the medians, the ratios median(trace)/median(baseline) per lab (targets:
reachable lab <= 2.0, broken lab <= 1.0) and the median diagnose times (targets: healthy
<= 0.9 s, broken <= 1.2 s).

Only the labs benchok and benchbad are made or removed; if either already exists the benchmark
refuses to start. Both are taken down in a `finally` (also on an error, Ctrl-C or SIGTERM), after
every tcpdump this script started, and any tcpdump left in those two labs' namespaces, is ended.
Run as root, from anywhere:  python3 bench/trace_diagnose.py [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OK_LAB, BAD_LAB = "benchok", "benchbad"
BAD_STAGE = "bcc-forwarding"
TARGET_IP = "10.10.13.61"          # target's address in labs/seed.toml
NETNS_DIR = "/run/netns"
TIMEOUT = 120.0                     # any single wgtrace command
LISTEN_TIMEOUT = 10.0               # tcpdump must say 'listening on' within this
STOP_TIMEOUT = 5.0                  # tcpdump must exit this long after SIGINT
# Without --immediate-mode, libpcap hands packets to tcpdump in blocks (up to a 1 s timeout),
# so a tcpdump stopped right after the ping has captured nothing at all (measured: 0 packets on
# all 14 interfaces of the reachable lab, every time); with it, the probe is seen on every hop.
# The flag barely changes the time; it makes the baseline show what `trace` shows.
TCPDUMP_EXTRA = ["--immediate-mode"]

WGT = [sys.executable, "-m", "wgtrace"]

# Targets from the brief.
TARGET_RATIO_BROKEN = 1.0
TARGET_RATIO_REACHABLE = 2.0
TARGET_DIAG_HEALTHY = 0.9
TARGET_DIAG_BROKEN = 1.2


class Failed(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that the `finally` runs."""


# Every tcpdump this script started (Popen objects), so cleanup can end them.
TCPDUMPS: list[subprocess.Popen] = []


# --- helpers ------------------------------------------------------------------------------

def lab_netns(lab: str) -> list[str]:
    """The lab's namespaces. Lab names have no '-', so the prefix matches no other lab."""
    prefix = f"wgt-{lab}-"
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def lab_exists(lab: str) -> bool:
    return bool(lab_netns(lab)) or os.path.exists(f"/run/wgtrace/{lab}")


def netns_inodes(labs: list[str]) -> set[int]:
    inodes = set()
    for lab in labs:
        for n in lab_netns(lab):
            try:
                inodes.add(os.stat(os.path.join(NETNS_DIR, n)).st_ino)
            except OSError:
                pass
    return inodes


def tcpdumps_in(inodes: set[int]) -> list[int]:
    """PIDs of tcpdump processes living in one of these network namespaces."""
    pids = []
    if not inodes:
        return pids
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "tcpdump":
                    continue
            if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def run_timed(argv: list[str], expect_rc: int, check=None) -> float:
    """Run argv from the repository; return its wall time. Raise Failed on a wrong outcome."""
    with tempfile.TemporaryFile() as out:
        # Output goes to a file, not a pipe: nothing the command leaves behind can hold it.
        t0 = time.perf_counter()
        r = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=TIMEOUT)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
    if r.returncode != expect_rc or (check and not check(text)):
        raise Failed(f"{' '.join(argv)} exited with {r.returncode} (expected {expect_rc}"
                     f"{', and output to match' if check else ''}):\n{text}")
    return wall


def run_quiet(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=TIMEOUT)


def stopped_at_bcc(text: str) -> bool:
    return re.search(r"\bstopped\b", text) is not None and "bcc" in text


def reachable(text: str) -> bool:
    return re.search(r"\breachable\b", text) is not None


# --- the baseline -------------------------------------------------------------------------

def interfaces(lab: str) -> list[tuple[str, str]]:
    """(namespace, interface) for every interface of every node, without lo and bridge ports."""
    found = []
    for ns in lab_netns(lab):
        r = subprocess.run(["ip", "netns", "exec", ns, "ip", "-o", "link"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise Failed(f"ip netns exec {ns} ip -o link: {r.stderr.strip()}")
        for line in r.stdout.splitlines():
            m = re.match(r"\d+:\s+([^:@\s]+)(?:@[^:\s]+)?:", line)
            if not m:
                continue
            name = m.group(1)
            if name == "lo" or re.search(r"\smaster\s", line):
                continue
            found.append((ns, name))
    if not found:
        raise Failed(f"lab {lab}: no interfaces found")
    return found


def baseline(lab: str, ifaces: list[tuple[str, str]], expect_reply: bool) -> tuple[float, int]:
    """tcpdump on every interface, one ping, stop them all.

    Returns (wall time, number of interfaces on which tcpdump captured at least one packet)."""
    procs: list[subprocess.Popen] = []
    sel = selectors.DefaultSelector()
    errbuf: dict[int, bytes] = {}
    try:
        t0 = time.perf_counter()
        for ns, ifname in ifaces:
            p = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", ifname, "-nn",
                                  "-c", "100", *TCPDUMP_EXTRA],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            procs.append(p)
            TCPDUMPS.append(p)
            os.set_blocking(p.stderr.fileno(), False)
            errbuf[p.pid] = b""
            sel.register(p.stderr, selectors.EVENT_READ, p)

        # Wait until every tcpdump has said 'listening on'.
        waiting = {p.pid for p in procs}
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                names = [f"{ns}:{i}" for (ns, i), p in zip(ifaces, procs) if p.pid in waiting]
                raise Failed(f"baseline {lab}: no 'listening on' within {LISTEN_TIMEOUT:.0f} s "
                             f"from {', '.join(names)}")
            for key, _ in sel.select(timeout=left):
                p = key.data
                try:
                    chunk = os.read(p.stderr.fileno(), 65536)
                except BlockingIOError:
                    continue
                if not chunk:                       # EOF: tcpdump died
                    sel.unregister(p.stderr)
                    if p.pid in waiting:
                        p.wait(timeout=STOP_TIMEOUT)
                        raise Failed(f"baseline {lab}: tcpdump exited {p.returncode} before "
                                     f"listening: {errbuf[p.pid].decode(errors='replace')}")
                    continue
                errbuf[p.pid] += chunk
                if b"listening on" in errbuf[p.pid]:
                    waiting.discard(p.pid)

        ping = subprocess.run(["ip", "netns", "exec", f"wgt-{lab}-home", "ping", "-c1", "-W1",
                               TARGET_IP], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10)

        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait(timeout=STOP_TIMEOUT)
        wall = time.perf_counter() - t0
    finally:
        sel.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            try:                                    # the rest: "N packets captured" etc.
                while chunk := os.read(p.stderr.fileno(), 65536):
                    errbuf[p.pid] += chunk
            except (BlockingIOError, OSError):
                pass
            p.stderr.close()
            TCPDUMPS.remove(p)

    bad = [p.returncode for p in procs if p.returncode != 0]
    if bad:
        raise Failed(f"baseline {lab}: tcpdump exit codes {bad} after SIGINT")
    if (ping.returncode == 0) != expect_reply:
        raise Failed(f"baseline {lab}: ping exited {ping.returncode}, expected "
                     f"{'a reply' if expect_reply else 'no reply'}")
    # The run only counts if tcpdump actually showed the probe: on the sender, and (reachable
    # lab) on target.
    captured = {}
    for (ns, ifname), p in zip(ifaces, procs):
        m = re.search(rb"(\d+) packets? captured", errbuf[p.pid])
        captured[(ns, ifname)] = int(m.group(1)) if m else 0
    must_see = [f"wgt-{lab}-home"] + ([f"wgt-{lab}-target"] if expect_reply else [])
    for node_ns in must_see:
        if not any(n for (ns, _), n in captured.items() if ns == node_ns):
            raise Failed(f"baseline {lab}: tcpdump captured nothing in {node_ns}: "
                         + ", ".join(f"{ns}:{i}={n}" for (ns, i), n in captured.items()))
    return wall, sum(1 for n in captured.values() if n)


# --- cleanup ------------------------------------------------------------------------------

def cleanup(labs: list[str]) -> list[str]:
    """End our tcpdumps, take the labs down. Returns problems found (empty if none)."""
    problems = []
    for p in list(TCPDUMPS):
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in list(TCPDUMPS):
        try:
            p.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stderr:
            p.stderr.close()
    TCPDUMPS.clear()

    # A wgtrace command killed mid-run (Ctrl-C) might leave a sniffer behind: any tcpdump in
    # these labs' namespaces goes. `lab down` also kills every process in them.
    inodes = netns_inodes(labs)
    for pid in tcpdumps_in(inodes):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    for lab in labs:
        if lab_exists(lab):
            try:
                r = run_quiet(WGT + ["lab", "down", lab])
                if r.returncode != 0:
                    problems.append(f"lab down {lab} exited {r.returncode}: "
                                    f"{r.stdout.decode(errors='replace').strip()}")
            except subprocess.TimeoutExpired:
                problems.append(f"lab down {lab} timed out")
        if lab_exists(lab):
            problems.append(f"lab {lab} is still there")

    deadline = time.monotonic() + 2.0
    left = tcpdumps_in(inodes)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = tcpdumps_in(inodes)
    if left:
        problems.append(f"tcpdump processes left: {left}")
    return problems


# --- main -----------------------------------------------------------------------------------

def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="number of rounds (default 5)")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if os.geteuid() != 0:
        print("trace_diagnose: needs root", file=sys.stderr)
        return 1
    for tool in ("ip", "tcpdump", "ping"):
        if shutil.which(tool) is None:
            print(f"trace_diagnose: needs {tool}", file=sys.stderr)
            return 1
    existing = [lab for lab in (OK_LAB, BAD_LAB) if lab_exists(lab)]
    if existing:
        print(f"trace_diagnose: already up: {', '.join(existing)}; remove first "
              f"(python3 -m wgtrace lab down NAME)", file=sys.stderr)
        return 1

    def on_term(signum, frame):
        raise Terminated()
    signal.signal(signal.SIGTERM, on_term)

    labs_made: list[str] = []
    status = 0
    try:
        for lab, extra in ((OK_LAB, []), (BAD_LAB, ["--stage", BAD_STAGE])):
            labs_made.append(lab)
            r = run_quiet(WGT + ["lab", "up", "--name", lab, *extra])
            if r.returncode != 0:
                raise Failed(f"lab up {lab} exited {r.returncode}:\n"
                             f"{r.stdout.decode(errors='replace')}")
        ok_if, bad_if = interfaces(OK_LAB), interfaces(BAD_LAB)
        status = bench(args.rounds, ok_if, bad_if)
    except Failed as e:
        print(f"trace_diagnose: {e}", file=sys.stderr)
        status = 1
    except subprocess.TimeoutExpired as e:
        print(f"trace_diagnose: timed out: {e}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("trace_diagnose: interrupted", file=sys.stderr)
        status = 130
    except Terminated:
        print("trace_diagnose: terminated", file=sys.stderr)
        status = 143
    finally:
        # No second Ctrl-C / SIGTERM may cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        problems = cleanup([OK_LAB, BAD_LAB] if labs_made else [])
        for p in problems:
            print(f"trace_diagnose: cleanup: {p}", file=sys.stderr)
        if problems and status == 0:
            status = 1
    return status


def bench(rounds: int, ok_if: list, bad_if: list) -> int:
    measures = {
        "trace ok": lambda: run_timed(WGT + ["trace", "home", "target", "--lab", OK_LAB],
                                      0, reachable),
        "trace bad": lambda: run_timed(WGT + ["trace", "home", "target", "--lab", BAD_LAB],
                                       1, stopped_at_bcc),
        "diag ok": lambda: run_timed(WGT + ["diagnose", "home", "target", "--lab", OK_LAB],
                                     0, reachable),
        "diag bad": lambda: run_timed(WGT + ["diagnose", "home", "target", "--lab", BAD_LAB],
                                      1, stopped_at_bcc),
        "base ok": lambda: baseline(OK_LAB, ok_if, expect_reply=True),
        "base bad": lambda: baseline(BAD_LAB, bad_if, expect_reply=False),
    }
    keys = list(measures)
    short = {"trace ok": "To", "trace bad": "Tb", "diag ok": "Do", "diag bad": "Db",
             "base ok": "Bo", "base bad": "Bb"}

    others = sorted({n.split("-")[1] for n in os.listdir(NETNS_DIR)
                     if n.startswith("wgt-") and n.split("-")[1] not in (OK_LAB, BAD_LAB)}) \
        if os.path.isdir(NETNS_DIR) else []
    l1, l5, l15 = os.getloadavg()
    print(f"wgtrace trace/diagnose vs hand-run tcpdump baseline, {rounds} rounds; "
          f"wall seconds per whole command")
    print(f"labs: {OK_LAB} (complete, reachable), {BAD_LAB} (stage {BAD_STAGE}, stops at bcc); "
          f"baseline sniffs {len(ok_if)} / {len(bad_if)} interfaces "
          f"(lo and bridge ports skipped)")
    print(f"load average at start: {l1:.2f} {l5:.2f} {l15:.2f}; cpus: {os.cpu_count()}; "
          f"other wgtrace labs up: {len(others)}{' (' + ', '.join(others) + ')' if others else ''}")
    head = (f"{'round':>6} | {'trace ok':>8} {'trace bad':>9} | {'diag ok':>7} {'diag bad':>8} | "
            f"{'base ok':>7} {'base bad':>8} | {'seen':>9} | {'T/B ok':>6} {'T/B bad':>7} | order")
    print(head)
    print("-" * len(head))

    rows = []
    for i in range(rounds):
        order = keys[i % len(keys):] + keys[:i % len(keys)]
        if i % 2:
            order.reverse()
        got, seen = {}, {}
        for k in order:
            v = measures[k]()
            if isinstance(v, tuple):
                v, seen[k] = v
            got[k] = v
        rows.append(got)
        print(f"{i + 1:>6} | {got['trace ok']:>8.3f} {got['trace bad']:>9.3f} | "
              f"{got['diag ok']:>7.3f} {got['diag bad']:>8.3f} | "
              f"{got['base ok']:>7.3f} {got['base bad']:>8.3f} | "
              f"{seen['base ok']:>4}/{seen['base bad']:<4} | "
              f"{fmt_ratio(got['trace ok'], got['base ok']):>6} "
              f"{fmt_ratio(got['trace bad'], got['base bad']):>7} | "
              f"{' '.join(short[k] for k in order)}", flush=True)

    med = {k: statistics.median(r[k] for r in rows) for k in keys}
    print("-" * len(head))
    print(f"{'median':>6} | {med['trace ok']:>8.3f} {med['trace bad']:>9.3f} | "
          f"{med['diag ok']:>7.3f} {med['diag bad']:>8.3f} | "
          f"{med['base ok']:>7.3f} {med['base bad']:>8.3f} | {'':>9} | "
          f"{fmt_ratio(med['trace ok'], med['base ok']):>6} "
          f"{fmt_ratio(med['trace bad'], med['base bad']):>7} |")
    print("order: To/Tb trace ok/bad, Do/Db diagnose ok/bad, Bo/Bb baseline ok/bad; "
          "T/B = trace / baseline;")
    print(f"seen: interfaces on which the baseline's tcpdump captured >= 1 packet, ok/bad "
          f"(of {len(ok_if)}/{len(bad_if)}); tcpdump flags: -nn -c 100 {' '.join(TCPDUMP_EXTRA)}")
    print()

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    r_ok = med["trace ok"] / med["base ok"]
    r_bad = med["trace bad"] / med["base bad"]
    print(f"trace/baseline, reachable lab (medians): {r_ok:.2f}x  "
          f"(target <= {TARGET_RATIO_REACHABLE:.1f}x: "
          f"{verdict(r_ok <= TARGET_RATIO_REACHABLE)})")
    print(f"trace/baseline, broken lab    (medians): {r_bad:.2f}x  "
          f"(target <= {TARGET_RATIO_BROKEN:.1f}x: {verdict(r_bad <= TARGET_RATIO_BROKEN)})")
    print(f"diagnose, healthy lab (median): {med['diag ok']:.3f} s  "
          f"(target <= {TARGET_DIAG_HEALTHY} s: {verdict(med['diag ok'] <= TARGET_DIAG_HEALTHY)})")
    print(f"diagnose, broken lab  (median): {med['diag bad']:.3f} s  "
          f"(target <= {TARGET_DIAG_BROKEN} s: {verdict(med['diag bad'] <= TARGET_DIAG_BROKEN)})")
    l1, l5, l15 = os.getloadavg()
    print(f"load average at end: {l1:.2f} {l5:.2f} {l15:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
