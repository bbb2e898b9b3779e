"""Native nftables on real labs: the rule that dropped is named by table, chain and handle as the
kernel has them, found by its counter where it has one and by matching the probe's packet
against the ruleset where it has none; the nft fix works and every check of the lab passes after
it. iptables-nft's own tables (they show in nft's listing too) are read once.

test_diagnose.py runs the nftables lab's catalogue like every other (cause, stop, fix, checks);
this file looks at what the evidence says of the rule, against ``nft -a list`` on the node.
"""
from __future__ import annotations

import re
import time

import pytest

from wgtrace.diagnose import facts as factsmod
from wgtrace.diagnose.run import diagnose
from wgtrace.lab.inject import inject
from wgtrace.model.faults import Fault, Step, find_fault, load_faults
from wgtrace.model.labfile import find_lab
from wgtrace.opener import open_network

NFT = load_faults(str(find_lab("nftables")))
# fault -> (the node's chain as the evidence names it, how the rule was found)
FOUND = {
    "gw1-forward-drop-no-counter": ("inet firewalld filter_FORWARD", "rule-judged"),
    "gw1-wg0-left-trusted-zone": ("inet firewalld filter_FORWARD", "rule-judged"),
    "gw2-docker-user-flushed": ("ip docker forward", "rule-judged"),
    "gw2-input-drops-wireguard": ("inet filter input", "rule-matched"),
    "gw2-blocklist-holds-gw1": ("inet filter input", "rule-judged"),
    "pc2-rejects-ssh-with-reset": ("inet host input", "rule-judged"),
}
IP6_GUARD = ("nft add table ip6 guard && nft add chain ip6 guard forward { type filter hook forward priority -5 ; "
             "policy accept ; } && nft add rule ip6 guard forward ip6 saddr fd01::/64 oifname eth1 drop")


def _diagnose(lab: str, src: str, dst: str, **kw):
    with open_network(lab=lab) as net:
        return diagnose(net, src, dst, **kw)


def _rule_evidence(v):
    ev = [e for e in v.verdict.evidence if e.kind == "nft"]
    assert len(ev) == 1, [e.to_json() for e in v.verdict.evidence]
    return ev[0], dict(ev[0].params)


def _kernel_handles(lab, node: str, chain: str) -> dict[int, str]:
    """handle -> the rule's line, as ``nft -a list chain`` prints them on the node now."""
    r = lab.node(node).run(["nft", "-a", "list", "chain", *chain.split()])
    assert r.returncode == 0, r.stderr
    return {int(m[2]): m[1].strip() for m in re.finditer(r"^\s*(.*?) # handle (\d+)$", r.stdout, re.M)
            if not m[1].strip().startswith("chain ")}


def _fix_and_check(cli, lab, v, src: str, dst: str, **opts) -> None:
    for f in v.verdict.fix:
        assert f.argv[0] == "nft", f.command
        x = cli("lab", "exec", "--lab", lab.name, f.node, "--", "sh", "-c", f.command)
        assert x.returncode == 0, (f.command, x.stderr)
    again = _diagnose(lab.name, src, dst, **opts)
    if not again.reachable:
        time.sleep(1.0)
        again = _diagnose(lab.name, src, dst, **opts)
    assert again.reachable, (again.verdict.cause, [e.to_json() for e in again.verdict.evidence])
    r = cli("check", "--all", "--lab", lab.name)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", sorted(FOUND))
def test_evidence_names_the_kernels_rule_and_how_it_was_found(lab_factory, cli, name):
    fault = find_fault(NFT, name)
    lab = lab_factory.up(lab_file="nftables")
    inject(fault, lab.state)
    src, dst = fault.probe.get("src", "pc1"), fault.probe.get("dst", "pc2")
    opts = {k: fault.probe[k] for k in ("tcp", "udp") if k in fault.probe}
    v = _diagnose(lab.name, src, dst, **opts)
    assert (v.verdict.cause, v.verdict.stop.node) == (fault.cause, fault.node)
    e, p = _rule_evidence(v)
    chain, key = FOUND[name]
    assert (e.key, p["chain"]) == (key, chain)
    if key == "rule-matched":
        assert p["n"] >= 1
    handles = _kernel_handles(lab, fault.node, chain)
    if p["rule"].startswith("type "):                  # a policy: the chain's head, no handle
        assert p["rule"].endswith("policy drop") and all("accept" in t or "jump" in t for t in handles.values())
    else:
        text, handle = p["rule"].rsplit(" # handle ", 1)
        assert int(handle) in handles, (handle, handles)
        assert re.sub(r"counter packets \d+ bytes \d+", "counter", handles[int(handle)]) == text
    fixes = [f.argv for f in v.verdict.fix]
    assert all(f[:1] == ("nft",) and " ".join(f).count(chain) == 1 for f in fixes), fixes
    _fix_and_check(cli, lab, v, src, dst, **opts)


def test_ip6_table_drop_is_found_and_fixed(lab_factory, cli):
    lab = lab_factory.up(lab_file="nftables")
    steps = tuple(Step("gw2", tuple(cmd.split())) for cmd in IP6_GUARD.split(" && "))
    inject(Fault("ip6-guard", "", steps, "forward-filtered", "gw2", "request"), lab.state)
    assert _diagnose(lab.name, "pc1", "10.2.0.10").reachable          # IPv4 is not that table's
    v = _diagnose(lab.name, "pc1", "fd02::10")
    assert (v.verdict.cause, v.verdict.stop.node, v.verdict.stop.phase) == ("forward-filtered", "gw2", "request")
    e, p = _rule_evidence(v)
    assert (e.key, p["chain"]) == ("rule-judged", "ip6 guard forward")
    handle = int(p["rule"].rsplit("# handle ", 1)[1])
    assert handle in _kernel_handles(lab, "gw2", "ip6 guard forward")
    assert [f.argv for f in v.verdict.fix] == [("nft", "delete", "rule", "ip6", "guard", "forward", "handle", str(handle))]
    _fix_and_check(cli, lab, v, "pc1", "fd02::10")


def test_iptables_nft_tables_are_read_once(lab_factory):
    """site2site's gateways filter with iptables (the nf_tables backend here): nft lists the same
    tables, and each rule is read once, as iptables'."""
    lab = lab_factory.up(lab_file="site2site")
    node = lab.node("gw1")
    listing = node.run(["nft", "list", "tables"]).stdout
    assert "table ip filter" in listing and "table ip nat" in listing, listing
    rules = factsmod.read_firewalls([node])["gw1"]
    assert not [r for r in rules if r.backend == "nft"], [r.text for r in rules if r.backend == "nft"]
    ipt = [(r.family, r.table, r.chain, r.text) for r in rules if r.backend == "iptables"]
    assert (4, "filter", "INPUT", "-A INPUT -i eth0 -p udp -m udp --dport 51820 -j ACCEPT") in ipt
    assert len(ipt) == len(set(ipt))
    # a native table beside them is read, as nft's
    assert node.run(["nft", "add", "table", "inet", "extra"]).returncode == 0
    assert node.run(["nft", "add chain inet extra input { type filter hook input priority 5 ; policy accept ; }"]).returncode == 0
    rules = factsmod.read_firewalls([node])["gw1"]
    native = [r for r in rules if r.backend == "nft"]
    assert [(r.nft_family, r.table, r.chain, r.hook, r.policy) for r in native] == \
        [("inet", "extra", "input", "input", True)]


def test_the_hosts_own_ruleset_is_untouched(lab_factory, cli):
    """A lab that writes nftables tables, a fault and its nft fix change nothing in the host's
    own ruleset (every nft command ran in a node's namespace)."""
    import subprocess
    def host() -> str:
        return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    before = host()
    with lab_factory.running(lab_file="nftables") as lab:
        fault = find_fault(NFT, "gw1-forward-drop-no-counter")
        inject(fault, lab.state)
        v = _diagnose(lab.name, "pc1", "pc2")
        assert v.verdict.cause == "forward-filtered"
        during = host()
        _fix_and_check(cli, lab, v, "pc1", "pc2")
    assert host() == during == before
