"""Helpers for tests and benchmarks of ``--hosts``: a lab whose nodes are reached over real SSH.

The lab (tests/labs/seedssh.toml) is the seed network plus a controller ``ctl`` with one cable to
every node's ``mgmt0``; every node runs an sshd (PermitRootLogin, the lab's own). This module
gives ctl a key, puts it in each node's /root/.ssh/authorized_keys (the node's own home
directory under /run/wgtrace/<lab>/<node>/home), writes an ssh_config and a hosts file in
ctl's home, and runs wgtrace inside ctl, as an operator would on their own machine.
Nothing on the host machine is touched: every file is in the lab's own directories.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_FILE = str(REPO / "tests" / "labs" / "seedssh.toml")
SEED_NODES = ["internet", "bcc", "home-router", "home", "company-router", "company", "target"]


def mgmt_ip(node: str) -> str:
    return f"172.31.255.{SEED_NODES.index(node) + 1}"


def home_of(lab: str, node: str) -> Path:
    from wgtrace.lab.runtime import node_dir
    return node_dir(lab, node) / "root"


def prepare(lab: str, extra: dict[str, str] | None = None, nodes=SEED_NODES) -> str:
    """Keys, authorized_keys, ssh_config and /root/hosts.toml in ctl; returns the hosts file's
    path as ctl sees it. ``extra``: more TOML for a host table, per host (``sudo = true``…)."""
    ctl = home_of(lab, "ctl")
    ssh = ctl / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    key = ssh / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"wgtrace-test-{lab}", "-f", str(key)],
                       check=True)
    pub = (ssh / "id_ed25519.pub").read_text()
    for n in SEED_NODES:
        d = home_of(lab, n) / ".ssh"
        d.mkdir(mode=0o700, exist_ok=True)
        (d / "authorized_keys").write_text(pub)
        (d / "authorized_keys").chmod(0o600)
    (ctl / "ssh_config").write_text("Host *\n  StrictHostKeyChecking accept-new\n"
                                    "  UserKnownHostsFile /root/known_hosts\n  IdentityFile /root/.ssh/id_ed25519\n")
    write_hosts(lab, "hosts.toml", extra, nodes)
    return "/root/hosts.toml"


def write_hosts(lab: str, name: str, extra: dict[str, str] | None = None, nodes=SEED_NODES,
                address: dict[str, str] | None = None) -> str:
    text = 'ssh_config = "/root/ssh_config"\nignore = ["mgmt0"]        # the management network\n'
    for n in nodes:
        ip = (address or {}).get(n, mgmt_ip(n))
        text += f'\n[hosts.{n}]\nssh = "root@{ip}"\n' + (extra or {}).get(n, "")
    (home_of(lab, "ctl") / name).write_text(text)
    return f"/root/{name}"


def in_ctl(lab: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``wgtrace ARGS`` run inside ctl (the Python running these tests stays visible there; so does
    this checkout, named on PYTHONPATH: in ctl's own home an editable install would be found first)."""
    return subprocess.run([sys.executable, "-m", "wgtrace", "lab", "exec", "ctl", "--lab", lab, "--",
                           "env", f"PYTHONPATH={REPO}", sys.executable, "-m", "wgtrace", *args], cwd=REPO,
                          capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def node_state(lab, node: str) -> dict[str, str]:
    """What a host's configuration is, read inside the node (not over SSH): addresses, routes of
    every table, policy rules, firewall rules without counters, sysctls, WireGuard peers without
    their live counters. Equal before and after a diagnosis, or something was changed."""
    h = lab.node(node) if hasattr(lab, "node") else lab
    out = {}
    for key, argv in (("addr", ["ip", "-4", "-o", "addr", "show"]), ("route", ["ip", "-4", "route", "show", "table", "all"]),
                      ("rule", ["ip", "-4", "rule", "show"]), ("link", ["ip", "-o", "link", "show"]),
                      ("iptables", ["iptables-save"]), ("sysctl", ["sysctl", "net.ipv4.ip_forward",
                                                                   "net.ipv4.conf.all.rp_filter"]),
                      ("wg", ["wg", "show", "all", "dump"])):
        text = h.run(argv).stdout
        if key == "iptables":
            text = "\n".join(re.sub(r"\[\d+:\d+\]", "", l) for l in text.splitlines() if not l.startswith("#"))
        if key == "wg":      # endpoint (roaming), handshake and transfer counters move by themselves,
            # and wireguard-go lists peers in no fixed order
            text = "\n".join(sorted("\t".join(f[:3] + f[4:5] + f[8:]) if len(f) == 9 else "\t".join(f[:1] + f[2:])
                             for f in (l.split("\t") for l in text.splitlines())))
        if key == "link":    # counters and neighbour-learned state aside, the links as configured
            text = "\n".join(" ".join(w for w in l.split() if not w.startswith("link/")) for l in text.splitlines())
        out[key] = text
    return out
