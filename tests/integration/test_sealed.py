"""A lab never touches the host: its routes, rules, links, firewall and net sysctls are the
same before a lab is built and after it is gone.

Only host state is compared. /run/netns is not: other people's labs come and go there
while this runs (and they don't touch host state either).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

SYSCTL_ROOTS = (Path("/proc/sys/net/ipv4"), Path("/proc/sys/net/core"))


def _cmd(argv: list[str]) -> str | None:
    if not shutil.which(argv[0]):
        return None
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{' '.join(argv)}: {r.stderr}"
    return r.stdout


def _link_names() -> list[str]:
    names = []
    for line in _cmd(["ip", "-o", "link"]).splitlines():
        # "2: eth0@if5: <BROADCAST,...> mtu ..." -> eth0
        names.append(line.split(": ", 2)[1].split("@")[0])
    return sorted(names)


def _sysctls() -> dict[str, str]:
    values = {}
    for root in SYSCTL_ROOTS:
        for dirpath, _, files in os.walk(root):
            for f in files:
                path = os.path.join(dirpath, f)
                try:
                    with open(path) as fh:
                        values[path] = fh.read()
                except OSError:
                    pass            # write-only (route/flush) or not readable: not state
    return values


def host_snapshot() -> dict:
    return {
        "routes": _cmd(["ip", "-4", "route", "show", "table", "all"]),
        "rules": _cmd(["ip", "rule"]),
        "links": _link_names(),
        "nft": _cmd(["nft", "list", "ruleset"]),
        "sysctl": _sysctls(),
    }


def _diff(before: dict, after: dict) -> list[str]:
    out = []
    for k in before:
        if k == "sysctl":
            # Only sysctls that existed before: a kernel module loaded on a lab's first use
            # (veth, bridge, nf_nat...) may add new ones. A new host interface shows in "links".
            for path in sorted(before[k]):
                a, b = before[k][path], after[k].get(path)
                if a != b:
                    out.append(f"{path}: {a!r} -> {b!r}")
        elif before[k] != after[k]:
            out.append(f"{k}:\n--- before\n{before[k]}\n--- after\n{after[k]}")
    return out


def test_host_is_untouched_by_a_lab(lab_factory):
    before = host_snapshot()
    assert before["sysctl"], "no sysctls read: is /proc mounted?"
    with lab_factory.running() as lab:
        home = lab.node("home")
        assert home.run(["ping", "-c1", "-W2", "10.10.13.61"], timeout=10).returncode == 0
        with home.inside():
            s = socket.create_connection(("10.10.13.61", 22), timeout=5)
        with s:
            s.settimeout(5)
            assert s.recv(64).startswith(b"SSH-2.0-")
        during = host_snapshot()
    after = host_snapshot()
    assert _diff(before, during) == [], "the host changed while the lab was up"
    assert _diff(before, after) == [], "the host changed after the lab came down"


def _etc_wireguard() -> list:
    d = Path("/etc/wireguard")
    return sorted((p.name, p.stat().st_mtime_ns) for p in d.iterdir()) if d.is_dir() else []


def test_host_is_untouched_by_wg_quick_in_the_nodes(lab_factory):
    """wg-quick in every WireGuard node (the vps lab): its routes, rules, nft tables and sysctls
    stay in the nodes, and it reads its files from the nodes' own homes, never /etc/wireguard."""
    before, etc = host_snapshot(), _etc_wireguard()
    with lab_factory.running(lab_file="vps") as lab:
        alice = lab.node("alice")
        assert alice.run(["ping", "-c1", "-W2", "198.18.0.80"], timeout=10).returncode == 0
        assert "wg-quick-wg0" in alice.run(["nft", "list", "tables"]).stdout
        during = host_snapshot()
    assert _diff(before, during) == [], "the host changed while the lab was up"
    assert _diff(before, host_snapshot()) == [], "the host changed after the lab came down"
    assert _etc_wireguard() == etc
