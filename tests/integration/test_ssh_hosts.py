"""``--hosts`` against real sshd: the seed network reached over SSH from a controller node.

Each test brings up tests/labs/seedssh.toml (the seed plus a controller ``ctl`` on a management
network, an sshd on every node), gives ctl a key and a hosts file (tests/ssh_support.py) and runs
``wgtrace … --hosts`` inside ctl, as an operator would. Checked: every seed fault gives over
SSH the verdict it gives in the lab; a diagnosis changes nothing on any host; ``discover``
writes a lab file that rebuilds a working network and holds no key; a host without wg, one that
cannot be reached and one whose sudo asks for a password each get one sentence, and the
diagnosis goes on without them; ``--fix`` asks, and repairs with ``--yes``.
"""
from __future__ import annotations

import json
import tomllib

import pytest

import ssh_support as S
from wgtrace.diagnose.run import diagnose
from wgtrace.lab.inject import inject
from wgtrace.opener import open_network
from wgtrace.model.commands import SSH_HOSTKEY
from wgtrace.model.faults import find_fault, load_faults
from wgtrace.model.labfile import find_lab

SEED_FAULTS = load_faults(str(find_lab("seed")))
# target-sshd-stopped stops the very sshd that target is reached through: not a fault to see over SSH
FAULTS = [f for f in SEED_FAULTS if f.name != "target-sshd-stopped"]


def ssh_lab(lab_factory, extra=None):
    lab = lab_factory.up(lab_file=S.LAB_FILE)
    return lab, S.prepare(lab.name, extra)


def verdict(j: dict) -> tuple:
    return j["cause"], (j["stop"] or {}).get("node"), (j["stop"] or {}).get("phase")


def private_keys(lab) -> list[str]:
    keys = []
    for n in S.SEED_NODES:
        p = S.home_of(lab.name, n) / "private"
        if p.exists():
            keys.append(p.read_text().strip())
    assert keys
    return keys


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_over_ssh_as_in_the_lab(lab_factory, fault):
    lab, hosts = ssh_lab(lab_factory)
    inject(fault, lab.state)
    src = fault.probe.get("src", "home")
    probe = {k: fault.probe[k] for k in ("tcp", "udp", "size") if k in fault.probe}
    args = [a for k, v in probe.items() for a in (f"--{k}", str(v))]
    only = fault.probe.get("only")
    r = S.in_ctl(lab.name, "diagnose", src, "target", "--hosts", hosts, "--json", *args,
                 *(["--only", only] if only else []))
    assert r.returncode == 1, r.stdout + r.stderr
    j = json.loads(r.stdout)
    # the lab's own diagnosis of the same lab (by address: in seedssh, target's name resolves to mgmt)
    with open_network(lab=lab.name, only=only) as net:
        d = diagnose(net, src, "10.10.13.61", **probe)
    in_lab = (d.verdict.cause, d.verdict.stop.node, d.verdict.stop.phase)
    assert verdict(j) == in_lab == (fault.cause, fault.node, fault.direction), r.stdout
    assert r.stderr.strip() == "", r.stderr        # every host seen: nothing to warn about


def test_diagnosis_changes_nothing_on_any_host(lab_factory):
    lab, hosts = ssh_lab(lab_factory)
    inject(find_fault(SEED_FAULTS, "company-return-rule-missing"), lab.state)
    before = {n: S.node_state(lab, n) for n in S.SEED_NODES}
    for args in (["diagnose", "home", "target", "--json"], ["trace", "home", "target", "--json"],
                 ["status", "--json"], ["discover", "-o", "/root/d.toml"], ["diagnose", "home", "target", "--fix"]):
        r = S.in_ctl(lab.name, *args, "--hosts", hosts)
        assert r.returncode in (0, 1), r.stderr
    after = {n: S.node_state(lab, n) for n in S.SEED_NODES}
    for n in S.SEED_NODES:
        for k in before[n]:
            assert after[n][k] == before[n][k], (n, k)
    # --fix without a terminal and without --yes asks nobody and runs nothing
    assert "not run on company" in r.stderr and "--yes" in r.stderr


def test_fix_over_ssh_with_yes(lab_factory):
    lab, hosts = ssh_lab(lab_factory)
    inject(find_fault(SEED_FAULTS, "bcc-route-missing"), lab.state)
    r = S.in_ctl(lab.name, "diagnose", "home", "target", "--hosts", hosts, "--fix", "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    run = json.loads(r.stdout)
    assert run["reachable"] and run["steps"][0]["cause"] == "route-missing"
    assert "bcc# ip route" in r.stderr            # each command is shown as it runs
    assert "10.10.13.0/24" in S.node_state(lab, "bcc")["route"]


def test_discover_rebuilds_a_working_network(lab_factory, tmp_path):
    lab, hosts = ssh_lab(lab_factory)
    r = S.in_ctl(lab.name, "discover", "--hosts", hosts, "-o", "/root/found.toml")
    assert r.returncode == 0, r.stderr
    path = S.home_of(lab.name, "ctl") / "found.toml"
    text = path.read_text()
    for key in private_keys(lab):
        assert key not in text
    data = tomllib.loads(text)
    assert set(data["nodes"]) == set(S.SEED_NODES)     # every router was a host: no middle needed
    assert data["nodes"]["company-router"]["bridges"] == ["lan"]
    copy = tmp_path / "found.toml"
    copy.write_text(text)
    rebuilt = lab_factory.up(lab_file=str(copy))
    with open_network(lab=rebuilt.name) as net:
        d = diagnose(net, "home", "target")
    assert d.reachable, d.to_json()
    assert rebuilt.state.keys["home"] not in {lab.state.keys["home"]}      # fresh keys


def test_keys_never_leave_the_hosts(lab_factory):
    lab, hosts = ssh_lab(lab_factory)
    outs = [S.in_ctl(lab.name, *a, "--hosts", hosts) for a in
            (["status", "--json"], ["diagnose", "home", "target", "--json"], ["discover"])]
    for r in outs:
        assert r.returncode == 0, r.stderr
        for key in private_keys(lab):
            assert key not in r.stdout + r.stderr
    st = json.loads(outs[0].stdout)
    home = next(n for n in st["nodes"] if n["name"] == "home")
    assert home["wireguard"][0]["public_key"] == lab.state.keys["home"]      # real public keys, read


def _second_sshd(lab, node: str, path: str, port: int = 2222) -> None:
    """Another sshd in ``node`` whose sessions get ``path`` as PATH (sshd's own SetEnv): a stand-in
    for a host that lacks a tool or has another sudo, without touching the machine's files."""
    from wgtrace.lab.preflight import which
    argv = [which("sshd"), "-f", "/dev/null", "-h", SSH_HOSTKEY, "-o", f"PidFile=/run/sshd-{port}.pid",
            "-o", "PermitRootLogin=yes", "-o", f"SetEnv=PATH={path}", "-p", str(port)]
    r = lab.node(node).run(argv)
    assert r.returncode == 0, r.stderr


def _bin(lab, node: str, name: str, tools: dict[str, str]) -> str:
    """A directory in the node's own home with the given tools (symlinks, or scripts)."""
    d = S.home_of(lab.name, node) / name
    d.mkdir()
    for tool, what in tools.items():
        if what.startswith("#!"):
            (d / tool).write_text(what)
            (d / tool).chmod(0o755)
        else:
            (d / tool).symlink_to(what)
    return f"/root/{name}"


def test_hosts_that_cannot_be_seen(lab_factory):
    lab, _ = ssh_lab(lab_factory)
    import shutil
    # bcc: no wg on its PATH (the rest of what wgtrace uses is there)
    keep = {t: shutil.which(t) for t in ("sh", "python3", "tcpdump", "awk", "grep", "cat", "tr", "cut", "date",
                                        "ls", "id", "timeout")}
    nowg = _bin(lab, "bcc", "bin", {t: p for t, p in keep.items() if p and not p.startswith("/root/")} |
                {"python3": "/usr/bin/python3"})
    _second_sshd(lab, "bcc", f"{nowg}:/usr/sbin:/sbin")
    # company-router: its sudo asks for a password; target: a sudo that works (runs the command)
    ask = _bin(lab, "company-router", "bin", {"sudo": "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n"})
    _second_sshd(lab, "company-router", f"{ask}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    ok = _bin(lab, "target", "bin", {"sudo": '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n'})
    _second_sshd(lab, "target", f"{ok}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    hosts = S.write_hosts(lab.name, "partial.toml", {"bcc": "port = 2222\n", "company-router": "port = 2222\nsudo = true\n",
                                                   "target": "port = 2222\nsudo = true\n"},
                          address={"home-router": "172.31.255.254"})        # ctl itself: nothing listens
    r = S.in_ctl(lab.name, "diagnose", "home", "target", "--hosts", hosts, "--json")
    assert r.returncode == 0, r.stdout + r.stderr        # the probe gets through; the rest goes on
    j = json.loads(r.stdout)
    warn = r.stderr
    assert "home-router (root@172.31.255.254) refused the connection" in warn
    assert "company-router" in warn and "sudo asks for a password" in warn
    assert "bcc has WireGuard (wg0) but no 'wg' tool" in warn
    assert "target" not in warn                          # sudo that works: target fully seen
    unseen = {e["node"] for e in j["evidence"] if "(" in e["detail"] or "no 'wg'" in e["detail"]}
    assert {"home-router", "company-router", "bcc"} <= unseen
    assert all(len(l) < 400 for l in warn.splitlines())  # one sentence each, no traceback
    assert "Traceback" not in warn
    # a destination that cannot be read: one sentence, not a traceback
    r = S.in_ctl(lab.name, "diagnose", "home", "company-router", "--hosts", hosts)
    assert r.returncode == 6 and "Probe one of its addresses instead" in r.stderr and "Traceback" not in r.stderr
