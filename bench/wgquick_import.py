#!/usr/bin/env python3
"""Time ``lab import`` and ``lab up`` of the five installers' networks, and a lab whose
WireGuard interfaces wg-quick brings up against the same lab typed command by command.

Part 1, for each installer of tests/data/wgquick (angristan, Nyr, PiVPN, wg-easy, Algo): per round
    python3 -m wgtrace lab import server=wg0.conf CLIENT... -o FILE
    python3 -m wgtrace lab up FILE --name benchiN      then   lab down benchiN
each command timed with time.perf_counter around subprocess.run; it prints the medians.

Part 2: the angristan import (every interface ``wg_quick = true``; its clients given a keepalive,
so that both builds start their handshakes at once) and the same lab in the plain lab format (wg_quick taken out; the routes, rules, fwmark and src_valid_mark wg-quick would make
written as the node's own items, typed with ip and wg), built alternately, ``lab up`` timed; it
prints both medians and the ratio wg-quick/plain, per lab and per WireGuard node.

Only labs named benchi* are made or removed; one that exists already stops the benchmark. Run as
root, from anywhere:  python3 bench/wgquick_import.py [--rounds N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "wgquick"
SETS = {"angristan": ["wg0-client-alice.conf", "wg0-client-bob.conf"], "nyr": ["phone.conf", "laptop.conf"],
        "pivpn": ["configs/laptop.conf", "configs/phone.conf"], "wg-easy": ["alice.conf", "bob.conf"],
        "algo": ["phone.conf", "laptop.conf"]}
sys.path.insert(0, str(REPO))


def run(argv: list[str], cwd: Path = REPO) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}: {r.stderr.strip().splitlines()[-1:]}")
    return wall


def wgt(*args: str, cwd: Path = REPO) -> float:
    return run([sys.executable, "-m", "wgtrace", *args], cwd)


def plain_format(path: Path, out: Path) -> int:
    """The lab file at ``path`` without wg_quick: what wg-quick makes, as declared items."""
    from wgtrace.model.labfile import load_lab
    from wgtrace.model.tomlout import lab_toml
    lab = load_lab(str(path))
    data = tomllib.loads(path.read_text())
    nodes = 0
    for name, node in data["nodes"].items():
        for iface, w in node.get("wireguard", {}).items():
            m = lab.nodes[name]
            nodes += 1
            for k in ("wg_quick", "dns", "table"):
                w.pop(k, None)
            if lab.nodes[name].wireguard[iface].fwmark:
                w["fwmark"] = lab.nodes[name].wireguard[iface].fwmark
            node.setdefault("routes", []).extend(
                {"dst": "::/0" if r.dst == "default" and r.family == 6 else r.dst, "dev": r.dev,
                 **({"table": r.table} if r.table else {})} for r in m.routes if r.made_by == iface)
            node.setdefault("rules", []).extend(
                {k: v for k, v in (("fwmark", r.fwmark), ("not", r.invert or None),
                                   ("table", int(r.table) if r.table.isdigit() else r.table),
                                   ("suppress_prefixlength", r.suppress_prefixlength),
                                   ("family", 6 if r.family == 6 else None)) if v is not None}
                for r in m.rules if r.made_by == iface)
            node.setdefault("sysctl", []).extend({"key": s.key, "value": s.value} for s in m.sysctl if s.made_by == iface)
            for k in ("routes", "rules", "sysctl"):
                if not node[k]:
                    del node[k]
    out.write_text(lab_toml(data))
    return nodes


def free(name: str) -> None:
    if Path(f"/run/wgtrace/{name}").exists():
        raise SystemExit(f"lab {name} exists: take it down first")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    rounds = ap.parse_args().rounds
    if os.geteuid() != 0:
        raise SystemExit("run as root: lab up builds namespaces")
    tmp = Path(tempfile.mkdtemp(prefix="wgt-bench-"))
    try:
        print(f"part 1: lab import and lab up of each installer's files, {rounds} rounds (medians)")
        for i, (installer, clients) in enumerate(SETS.items()):
            name = f"benchi{i}"
            free(name)
            lab_file = tmp / f"{installer}.toml"
            imports, ups, downs = [], [], []
            for _ in range(rounds):
                imports.append(wgt("lab", "import", "server=wg0.conf", *clients, "-o", str(lab_file), "--name", "bench",
                                   cwd=DATA / installer))
                try:
                    ups.append(wgt("lab", "up", str(lab_file), "--name", name))
                finally:
                    downs.append(wgt("lab", "down", name))
            n = len(tomllib.loads(lab_file.read_text())["nodes"])
            print(f"  {installer:<10} {n} nodes: import {statistics.median(imports):.2f} s, lab up "
                  f"{statistics.median(ups):.2f} s, lab down {statistics.median(downs):.2f} s")
        print(f"part 2: lab up, wg-quick in the nodes against the lab format, {rounds} rounds each, alternating")
        quick, plain = tmp / "quick.toml", tmp / "plain.toml"
        wgt("lab", "import", "server=wg0.conf", *SETS["angristan"], "-o", str(quick), "--name", "bench",
            cwd=DATA / "angristan")
        # a keepalive on the clients' peers, in both: each side then starts its handshake at once
        # (without one, a client waits for traffic, and the two builds would differ by when the
        # kernel's own IPv6 chatter first goes into the tunnel, not by how they build)
        quick.write_text(quick.read_text().replace('endpoint = "server:ens3" }', 'endpoint = "server:ens3", keepalive = 25 }'))
        wg_nodes = plain_format(quick, plain)
        times = {"wg-quick": [], "lab format": []}
        for _ in range(rounds):
            for kind, f in (("wg-quick", quick), ("lab format", plain)):
                free("benchiq")
                try:
                    times[kind].append(wgt("lab", "up", str(f), "--name", "benchiq"))
                finally:
                    wgt("lab", "down", "benchiq")
        q, p = statistics.median(times["wg-quick"]), statistics.median(times["lab format"])
        print(f"  angristan ({wg_nodes} WireGuard nodes of 7): wg-quick {q:.2f} s, lab format {p:.2f} s, "
              f"ratio {q / p:.2f}x; per WireGuard node {(q - p) / wg_nodes * 1000:+.0f} ms")
        for kind, ts in times.items():
            print(f"    {kind}: " + " ".join(f"{t:.2f}" for t in ts))
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
