#!/usr/bin/env python3
"""A class's page: N seed labs up (default 50), `wgtrace serve` showing them in headless Chromium.

Measured against a plain static file server (python3 -m http.server) serving the very page
`wgtrace serve` sent, with its script and style, from a directory:
  - time to first paint (first-contentful-paint from the browser's performance API), and the time
    until the script has drawn every lab's card (its "labs-rendered" mark), over several fresh
    loads of the page after one that warms the browser up: medians, and serve / static ratios;
  - the server's CPU (user + system, all its threads, from /proc) over a minute with the page open,
    then over a minute with fifty more pages' event streams open beside it; the static server's
    over a minute with its page open;
  - how long a change takes to reach the open page: one lab taken down, until its card says so;
  - the poller's own cost: one reading of every lab, in process.
Labs are named svcK (K = 1..N); only those are made and removed. Needs root, Debian's chromium
and chromium-driver, and selenium (setup.sh installs them).
Run as root:  python3 bench/serve_class.py [--labs 50] [--loads 5] [--seconds 60]
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]
WGT = [sys.executable, "-m", "wgtrace"]
TICK = os.sysconf("SC_CLK_TCK")


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(WGT + args, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK          # utime + stime, every thread


def paint_times(b, url: str, loads: int, labs: int) -> tuple[list[float], list[float]]:
    fcp, drawn = [], []
    for i in range(loads + 1):                # the first load warms the browser up: not counted
        b.driver.get("about:blank")
        b.driver.get(url)
        b.wait("return performance.getEntriesByName('labs-rendered').length"
               " && performance.getEntriesByName('first-contentful-paint').length")
        n = b.js("return document.querySelectorAll('section.lab').length")
        assert n >= labs, f"{n} cards for {labs} labs"
        if i == 0:
            continue
        fcp.append(b.js("return performance.getEntriesByName('first-contentful-paint')[0].startTime"))
        drawn.append(b.js("return performance.getEntriesByName('labs-rendered')[0].startTime"))
    return fcp, drawn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_streams(port: int, n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        out.append(s)
    for s in out:
        got = b""
        while b"event: snapshot" not in got:
            got += s.recv(1 << 20)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labs", type=int, default=50)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    import browser_support as B
    why = B.browser_blocker()
    if why:
        print(why, file=sys.stderr)
        return 2
    names = [f"svc{i}" for i in range(1, a.labs + 1)]
    if any(os.path.exists(f"/run/wgtrace/{n}") for n in names):
        print("svc labs are up already: remove them first", file=sys.stderr)
        return 2
    serve = static = browser = None
    state_dir = tempfile.mkdtemp(prefix="wgtrace-bench-state-")
    root = Path(tempfile.mkdtemp(prefix="wgtrace-bench-static-"))
    os.environ["WGTRACE_STATE_DIR"] = state_dir          # nobody's progress records but ours
    try:
        t = time.perf_counter()
        for n in names:
            r = run(["lab", "up", "--name", n])
            if r.returncode != 0:
                print(f"{n}: lab up failed: {r.stderr.strip()}", file=sys.stderr)
                return 1
        print(f"{len(names)} seed labs up in {time.perf_counter() - t:.0f} s")

        from wgtrace.serve import labs as L
        ticks = []
        for _ in range(5):
            t = time.perf_counter()
            for n in L.lab_names():
                L.read(n)
            L.records()
            ticks.append(time.perf_counter() - t)
        print(f"one reading of every lab ({len(L.lab_names())} on this machine): median "
              f"{statistics.median(ticks) * 1000:.1f} ms")

        serve = B.ServeProcess("--interval", "1")
        browser = B.Browser(1400, 1000)
        s_fcp, s_drawn = paint_times(browser, serve.url, a.loads, a.labs)
        html = urllib.request.urlopen(serve.url).read()
        (root / "static").mkdir()
        (root / "index.html").write_bytes(html)
        for f in ("app.js", "app.css"):
            (root / "static" / f).write_bytes(urllib.request.urlopen(serve.url + "static/" + f).read())
        print(f"the page: {len(html) / 1024:.0f} KiB of HTML for {a.labs} labs")

        # CPU with the page open, then with fifty more pages' streams beside it
        browser.driver.get(serve.url)
        browser.wait("return document.querySelectorAll('section.lab').length")
        c0, t0 = cpu_seconds(serve.pid), time.monotonic()
        time.sleep(a.seconds)
        s_cpu1 = (cpu_seconds(serve.pid) - c0) / (time.monotonic() - t0)
        streams = open_streams(serve.port, 50)
        c0, t0 = cpu_seconds(serve.pid), time.monotonic()
        time.sleep(a.seconds)
        s_cpu50 = (cpu_seconds(serve.pid) - c0) / (time.monotonic() - t0)
        for s in streams:
            s.close()

        # a change reaching the open page
        t = time.perf_counter()
        run(["lab", "down", names[-1]])
        down = time.perf_counter() - t
        browser.wait(f"return document.querySelector('section.lab[data-lab=\"{names[-1]}\"]')?.dataset.status === 'gone'")
        seen = time.perf_counter() - t

        port = free_port()
        static = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port),
                                   "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/"
        b_fcp, b_drawn = paint_times(browser, url, a.loads, a.labs)
        browser.driver.get(url)
        c0, t0 = cpu_seconds(static.pid), time.monotonic()
        time.sleep(a.seconds)
        b_cpu = (cpu_seconds(static.pid) - c0) / (time.monotonic() - t0)

        med = statistics.median
        print(f"\n{'':36} | {'wgtrace serve':>13} | {'static server':>13} | ratio")
        print(f"{'first contentful paint, ms':36} | {med(s_fcp):13.0f} | {med(b_fcp):13.0f} | {med(s_fcp) / med(b_fcp):.2f}x")
        print(f"{'every card drawn, ms':36} | {med(s_drawn):13.0f} | {med(b_drawn):13.0f} | {med(s_drawn) / med(b_drawn):.2f}x")
        print(f"{'CPU, page open, % of a core':36} | {s_cpu1 * 100:13.2f} | {b_cpu * 100:13.2f} |")
        print(f"{'CPU, +50 event streams, % of a core':36} | {s_cpu50 * 100:13.2f} | {'-':>13} |")
        print(f"\nfirst paint, all loads (ms): serve {[round(x) for x in s_fcp]}, static {[round(x) for x in b_fcp]}")
        print(f"a lab taken down (lab down {down:.2f} s) shown on the open page {seen - down:.2f} s after it was gone")
    finally:
        if browser is not None:
            browser.quit()
        for p in (serve, ):
            if p is not None:
                p.stop()
        if static is not None:
            static.terminate()
            static.wait()
        for n in names:
            if os.path.exists(f"/run/wgtrace/{n}"):
                run(["lab", "down", n])
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        left = [n for n in names if os.path.exists(f"/run/wgtrace/{n}")] + \
            [p for p in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else []) if p.startswith("wgt-svc")]
        print(f"left behind: {left or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
