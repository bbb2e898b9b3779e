"""``--hosts`` over IPv6: real hosts (the seed network behind real sshd, tests/labs/seedssh.toml)
read, probed and written in both families.

The company LAN gets an IPv6 network beside its IPv4 one (company and target, added by hand as an
operator would); from the controller, over SSH: the probe is sent in both families, tcpdump on
the hosts catches ICMPv6 (its filter has IPv6 parts), a drop by ip6tables is found with the rule,
and ``discover`` writes the IPv6 addresses and rules into the lab file.
"""
from __future__ import annotations

import json
import tomllib

import ssh_support as S

V6 = {"company": "fd00:13::62/64", "target": "fd00:13::61/64"}


def test_hosts_are_probed_and_discovered_in_both_families(lab_factory):
    lab = lab_factory.up(lab_file=S.LAB_FILE)
    hosts = S.prepare(lab.name)
    for node, cidr in V6.items():
        assert lab.node(node).run(["ip", "addr", "add", cidr, "dev", "ens192", "nodad"]).returncode == 0
    r = S.in_ctl(lab.name, "trace", "company", "fd00:13::61", "--hosts", hosts, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["family"] == 6 and d["reachable"] is True
    assert any(h["node"] == "target" and h["summary"].startswith("IP6 fd00:13::62 > fd00:13::61: ICMP6, echo request")
               for h in d["hops"]), d["hops"]
    assert lab.node("target").run(["ip6tables", "-I", "INPUT", "-s", "fd00:13::/64", "-p", "ipv6-icmp",
                                   "--icmpv6-type", "echo-request", "-j", "DROP"]).returncode == 0
    r = S.in_ctl(lab.name, "diagnose", "company", "fd00:13::61", "--hosts", hosts, "--json")
    d = json.loads(r.stdout)
    assert r.returncode == 1 and (d["cause"], d["stop"]["node"]) == ("input-filtered", "target"), r.stdout
    assert any(e["kind"] == "ip6tables" and "fd00:13::/64" in e["detail"] for e in d["evidence"])
    assert [f["command"] for f in d["fix"]] == [
        "ip6tables -t filter -D INPUT -s fd00:13::/64 -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j DROP"]
    r = S.in_ctl(lab.name, "discover", "--hosts", hosts, "-o", "/root/d.toml")
    assert r.returncode == 0, r.stderr
    found = tomllib.loads((S.home_of(lab.name, "ctl") / "d.toml").read_text())
    target = found["nodes"]["target"]
    assert V6["target"] in target["addresses"]["ens192"]
    assert any("fd00:13::/64" in x["rule"] for x in target.get("ip6tables", []))
