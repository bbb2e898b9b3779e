"""IPv6 on a real dual-stack lab (roadwarrior: alice's full tunnel with ::/0 and an IPv6 home,
carol on an IPv6-only network whose tunnel runs over IPv6, the server NAT66ing to the web).

Both families from one command, -4/-6, ICMPv6/TCP/UDP probes, ICMPv6 errors in a real
capture, WireGuard followed over an IPv6 underlay, pcapng of both families, wg-quick export,
and the leak: IPv6 going around a tunnel that covers only 0.0.0.0/0.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from wgtrace.diagnose.run import diagnose
from wgtrace.opener import open_network
from wgtrace.trace.run import run_trace


@pytest.fixture(scope="module")
def rw():
    from conftest import LabFactory, _need_lab
    _need_lab()
    factory = LabFactory()
    try:
        yield factory.up(lab_file="roadwarrior")
    finally:
        factory.close()


def test_a_name_with_both_families_gets_one_result_per_family(rw, cli):
    r = cli("trace", "alice", "web", "--lab", rw.name, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["family"] == 4 and d["probe"]["dst_ip"] == "198.18.0.80"        # the IPv4 one, as before
    assert [(x["family"], x["probe"]["dst_ip"], x["reachable"]) for x in d["families"]] == \
        [(4, "198.18.0.80", True), (6, "2001:db8:80::80", True)]
    six = [h for h in d["families"][1]["hops"] if h["layer"] == "inner"]
    assert six[0]["node"] == "alice" and six[0]["iface"] == "wg0"            # ::/0 goes into the tunnel
    assert any(h["node"] == "server" and h["iface"] == "eth0" and h["src"] == "2001:db8:5::5" for h in six)  # NAT66
    r = cli("diagnose", "alice", "web", "-6", "--lab", rw.name, "--json")
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["family"] == 6 and "families" not in d and d["cause"] == "reachable"
    text = cli("diagnose", "alice", "web", "--lab", rw.name).stdout
    assert "IPv4" in text and "IPv6" in text and "(2001:db8:80::80)" in text
    r = cli("trace", "alice", "web", "-4", "-6", "--lab", rw.name)
    assert r.returncode == 2 and "choose one of -4 and -6" in r.stderr
    r = cli("diagnose", "alice", "fd42:42:42::1", "--lab", rw.name, "--json")      # an IPv6 address as DST
    assert r.returncode == 0 and json.loads(r.stdout)["dst_ip"] == "fd42:42:42::1"


def test_tcp_and_udp_over_ipv6(rw):
    with open_network(lab=rw.name) as net:
        assert run_trace(net, "alice", "nas", tcp=22, family=6).reachable
        closed = run_trace(net, "bob", "nas", udp=9, family=6)           # nothing listens: ICMPv6 port unreachable
        assert not closed.reachable and closed.refused
        assert any("unreachable port" in e.summary for e in closed.errors)
        d = diagnose(net, "bob", "nas", udp=9, family=6)
        assert d.verdict.cause == "port-closed" and d.verdict.stop.node == "nas"


def test_too_big_over_ipv6_is_an_mtu_verdict(rw):
    """The tunnel's MTU is 1420: a 1450-byte IPv6 packet from the NAS to alice gets "packet too big"."""
    with open_network(lab=rw.name) as net:
        d = diagnose(net, "nas", "fd42:42:42::2", size=1450)
    v = d.verdict
    assert v.cause == "mtu" and (v.stop.node, v.stop.iface) == ("server", "wg0"), v.evidence
    assert any("packet too big, mtu 1420" in e.detail() for e in v.evidence)
    assert "packet too big" in d.explanation


def test_wireguard_over_an_ipv6_underlay_is_followed(rw):
    with open_network(lab=rw.name) as net:
        res = run_trace(net, "carol", "nas", family=4)
    assert res.reachable
    under = [h for h in res.hops if h.layer == "underlay" and h.role == "request"]
    assert under and all(h.src == "2001:db8:c::30" or h.dst == "2001:db8:c::30" for h in under[:1])
    assert under[0].carries is not None and res.hops[under[0].carries].dst == "10.0.10.20"
    assert "IP6 2001:db8:c::30" in under[0].summary


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="tcpdump not installed")
def test_pcapng_holds_both_families(rw, cli, tmp_path):
    path = tmp_path / "both.pcapng"
    r = cli("trace", "alice", "web", "--lab", rw.name, "--pcap", str(path))
    assert r.returncode == 0, r.stderr
    out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "10.8.0.2 > 198.18.0.80: ICMP echo request" in out.stdout
    assert "fd42:42:42::2 > 2001:db8:80::80: ICMP6, echo request" in out.stdout


def test_export_writes_both_families(rw, cli, tmp_path):
    r = cli("lab", "export", str(tmp_path), "--lab", rw.name)
    assert r.returncode == 0, r.stderr
    server, alice = ((tmp_path / n / "wg0.conf").read_text() for n in ("server", "alice"))
    assert "Address = 10.8.0.1/24, fd42:42:42::1/64" in server
    assert "PostUp = ip6tables -t nat -A POSTROUTING -s fd42:42:42::/64 -o eth0 -j MASQUERADE" in server
    assert "PostUp = sysctl -w net.ipv6.conf.all.forwarding=1" in server
    assert "AllowedIPs = 0.0.0.0/0, ::/0" in alice


def test_ipv6_around_a_tunnel_that_covers_only_ipv4_is_a_leak(rw, cli):
    """As wg-quick sets up AllowedIPs = 0.0.0.0/0 alone: no IPv6 rule or table, the home's IPv6
    default route stays: the probe is reachable, with a note naming the interface it left by.
    (The last test of the module: it leaves alice's tunnel so.)"""
    alice = rw.node("alice")
    key = rw.node("server").run(["wg", "show", "wg0", "public-key"]).stdout.strip()
    for argv in (["wg", "set", "wg0", "peer", key, "allowed-ips", "0.0.0.0/0"],
                 ["ip", "-6", "rule", "del", "not", "fwmark", "51820", "table", "51820"],
                 ["ip", "-6", "rule", "del", "table", "main", "suppress_prefixlength", "0"],
                 ["ip", "-6", "route", "del", "::/0", "dev", "wg0", "table", "51820"]):
        assert alice.run(argv).returncode == 0, argv
    r = cli("diagnose", "alice", "web", "-6", "--lab", rw.name, "--json")
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["cause"] == "reachable"
    assert any(e["kind"] == "capture" and "left by wlan0, not through the full tunnel wg0" in e["detail"]
               for e in d["evidence"]), d["evidence"]
    text = cli("diagnose", "alice", "web", "-6", "--lab", rw.name, "--lang", "zh").stdout
    assert "泄漏" in text and "wlan0" in text
    r = cli("check", "--all", "--lab", rw.name, "--json")
    rows = json.loads(r.stdout)["checks"]
    leak = [c for c in rows if c["leak"]]
    assert [(c["src"], c["dst"], c["family"], c["leak"]) for c in leak] == [("alice", "web", 6, "wlan0")]
    assert all(c["leak"] is None for c in rows if c["family"] == 4)
    wide = cli("check", "--all", "--lab", rw.name)
    assert "leak: wlan0" in wide.stdout
