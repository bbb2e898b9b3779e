"""wgtrace trace against real labs: where the probe is last seen at every stage of the walkthrough."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from wgtrace.opener import open_network
from wgtrace.trace.run import run_trace as _run_trace


def run_trace(src, dst, lab, **kw):
    with open_network(lab=lab) as net:
        return _run_trace(net, src, dst, **kw)

# stage -> (reachable, last seen (node, iface, direction, phase)) on the seed lab, home -> target
LAST_SEEN = {
    "base": (False, ("internet", "eth-home", "in", "request")),
    "wg0": (False, ("internet", "eth-home", "in", "request")),
    "peers": (False, ("internet", "eth-home", "in", "request")),
    "home-route": (False, ("home", "wg0", "out", "request")),
    "home-allowed-ips": (False, ("bcc", "wg0", "in", "request")),
    "bcc-forwarding": (False, ("bcc", "wg0", "in", "request")),
    "bcc-forward-rules": (False, ("internet", "eth-bcc", "in", "request")),
    "bcc-route": (False, ("company", "wg0", "in", "request")),
    "company-forward": (False, ("internet", "eth-company", "in", "reply")),
    "masquerade": (False, ("company", "ens192", "in", "reply")),
    "return-rule": (True, None),
    "complete": (True, None),
}


def _inner(res, **kw):
    return [h for h in res.hops if h.layer == "inner" and all(getattr(h, k) == v for k, v in kw.items())]


@pytest.mark.parametrize("stage", list(LAST_SEEN))
def test_last_seen_at_every_stage(lab_factory, stage):
    lab = lab_factory.up(stage)
    res = run_trace("home", "target", lab.name)
    reachable, last = LAST_SEEN[stage]
    assert res.reachable is reachable, res.story_text()
    if last is None:
        assert res.last_seen is None
    else:
        ls = res.last_seen
        assert (ls.node, ls.iface, ls.dir, ls.phase) == last, res.story_text()


def test_no_route_on_home_leaves_by_wlp2s0_toward_home_router(lab_factory):
    lab = lab_factory.up("peers")
    res = run_trace("home", "target", lab.name)
    first = _inner(res, node="home", role="request")[0]
    assert (first.iface, first.dir, first.src, first.dst) == ("wlp2s0", "out", "192.168.0.9", "10.10.13.61")
    assert _inner(res, node="home-router", iface="lan", dir="in", role="request")
    # ICMP "net unreachable" from the internet router is an error, never the answer
    assert not res.reachable and any("unreachable" in e.summary for e in res.errors)


def test_no_forwarding_on_bcc_enters_wg0_never_leaves(lab_factory):
    lab = lab_factory.up("home-allowed-ips")
    res = run_trace("home", "target", lab.name)
    assert _inner(res, node="bcc", iface="wg0", dir="in", role="request")
    assert not [h for h in res.hops if h.node == "bcc" and h.dir == "out" and h.role == "request"]
    assert res.expected_next == "seen entering bcc on wg0, never left bcc"


def test_no_nat_target_sees_vpn_source_and_reply_goes_to_router(lab_factory):
    lab = lab_factory.up("company-forward")
    res = run_trace("home", "target", lab.name)
    at_target = _inner(res, node="target", iface="ens192", dir="in", role="request")
    assert at_target and (at_target[0].src, at_target[0].dst) == ("192.168.2.2", "10.10.13.61")
    # the reply leaves target toward its default gateway 10.10.13.1 and is masqueraded out of wan
    assert _inner(res, node="target", dir="out", role="reply")
    assert _inner(res, node="company-router", iface="lan", dir="in", role="reply")
    assert not _inner(res, node="company", role="reply")


def test_no_return_rule_reply_seen_on_ens192_never_on_wg0(lab_factory):
    lab = lab_factory.up("masquerade")
    res = run_trace("home", "target", lab.name)
    assert _inner(res, node="company", iface="ens192", dir="in", role="reply")
    assert not _inner(res, node="company", iface="wg0", role="reply")


def test_reachable_path_is_the_documents_figure_and_nat_is_one_packet(seed_lab):
    res = run_trace("home", "target", seed_lab.name)
    assert res.reachable
    assert res.inner_path("request") == ("home.wg0 -> bcc.wg0 -> bcc.wg0 -> company.wg0 -> "
                                         "company.ens192 -> target.ens192")
    wg_in = _inner(res, node="company", iface="wg0", role="request")[0]
    ens_out = _inner(res, node="company", iface="ens192", role="request")[0]
    assert (wg_in.src, wg_in.dst) == ("192.168.2.2", "10.10.13.61")
    assert (ens_out.src, ens_out.dst) == ("10.10.13.62", "10.10.13.61")
    # the inner packet on home wg0 is tied to the datagram that carries it, hop by hop to bcc
    home_wg = res.hops.index(_inner(res, node="home", iface="wg0", role="request")[0])
    carriers = [(h.node, h.iface) for h in res.hops if h.layer == "underlay" and h.carries == home_wg]
    assert carriers[:6] == [("home", "wlp2s0"), ("home-router", "lan"), ("home-router", "wan"),
                            ("internet", "eth-home"), ("internet", "eth-bcc"), ("bcc", "eth0")]
    wan = next(h for h in res.hops if h.layer == "underlay" and h.carries == home_wg and h.node == "home-router"
               and h.iface == "wan")
    assert wan.src == "198.51.100.14"      # NATed by the home router


def test_tcp_22_reaches_sshd(seed_lab):
    res = run_trace("home", "target", seed_lab.name, tcp=22)
    assert res.reachable
    assert any("Flags [S.]" in h.summary for h in res.hops if h.role == "reply")


def test_redirects_are_reported_not_answers(lab_factory):
    lab = lab_factory.up("return-rule")       # bcc still sends redirects before the last stage
    res = run_trace("home", "target", lab.name)
    assert res.reachable
    assert res.redirects and all("redirect" in h.summary for h in res.redirects)
    assert all(h.role != "redirect" for h in res.hops)


def test_json_schema_and_exit_codes(seed_lab, lab_factory, cli):
    r = cli("trace", "home", "target", "--lab", seed_lab.name, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["reachable"] is True and d["last_seen"] is None
    assert set(d["hops"][0]) >= {"node", "iface", "dir", "src", "dst", "summary", "t_ms"}
    broken = lab_factory.up("bcc-forwarding")
    r = cli("trace", "home", "target", "--lab", broken.name, "--json")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["reachable"] is False and d["last_seen"] == {"node": "bcc", "iface": "wg0", "dir": "in",
                                                          "direction": "in", "phase": "request"}


def test_bad_destination_and_node(seed_lab, cli):
    r = cli("trace", "home", "8.8.8.8", "--lab", seed_lab.name)
    assert r.returncode == 2 and "outside the lab" in r.stderr and "Traceback" not in r.stderr
    r = cli("trace", "nobody", "target", "--lab", seed_lab.name)
    assert r.returncode == 6 and "no node 'nobody'" in r.stderr


@pytest.mark.skipif(not shutil.which("tcpdump"), reason="tcpdump not installed")
def test_pcapng_opens_with_tcpdump_and_names_every_interface(seed_lab, cli, tmp_path):
    path = tmp_path / "sub" / "probe.pcapng"
    r = cli("trace", "home", "target", "--lab", seed_lab.name, "--pcap", str(path))
    assert r.returncode == 0, r.stderr
    out = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "192.168.2.2 > 10.10.13.61: ICMP echo request" in out.stdout and ".38371: UDP" in out.stdout
    names = _idb_names(path.read_bytes())
    assert {"home:wg0", "bcc:eth0", "company:wg0", "target:ens192"} <= set(names)
    assert len(names) == len(set(names))        # one interface block per node:iface, none unnamed
    r = cli("trace", "home", "target", "--lab", seed_lab.name, "--pcap", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr


def test_pcapng_opens_in_wireshark_with_each_frame_on_its_node_and_interface(seed_lab, cli, tmp_path):
    """What Wireshark shows (tshark, its command line): every frame under its node:iface, the
    WireGuard datagrams dissected as WireGuard, the probe's echo request seen on the way."""
    if not shutil.which("tshark"):
        if os.environ.get("WGTRACE_REQUIRE_LAB"):     # CI: setup.sh installed it, or this is a failure
            pytest.fail("tshark is not installed (setup.sh installs it)")
        pytest.skip("tshark not installed")
    path = tmp_path / "probe.pcapng"
    r = cli("trace", "home", "target", "--lab", seed_lab.name, "--pcap", str(path))
    assert r.returncode == 0, r.stderr
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-d", "udp.port==38371,wg", "-T", "fields",
                          "-e", "frame.interface_name", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert rows and all(len(r) == 3 and r[0].count(":") == 1 for r in rows), rows[:5]
    seen = {(iface, proto) for iface, proto, _ in rows}
    assert ("home:wg0", "ICMP") in seen and ("target:ens192", "ICMP") in seen, sorted(seen)
    assert any(iface == "bcc:eth0" and proto == "WireGuard" for iface, proto in seen), sorted(seen)
    assert any("Echo (ping) request" in info for _, _, info in rows)


def _idb_names(data: bytes) -> list:
    """if_name of every interface description block of a pcapng file (None where it has none)."""
    import struct
    names, i = [], 0
    while i < len(data):
        kind, length = struct.unpack_from("<II", data, i)
        if kind == 1:
            name, o = None, i + 16
            while o < i + length - 4:
                code, n = struct.unpack_from("<HH", data, o)
                if code == 0:
                    break
                if code == 2:
                    name = data[o + 4:o + 4 + n].decode()
                o += 4 + (n + 3) // 4 * 4
            names.append(name)
        i += length
    return names


def test_mtu_probe_is_refused_with_an_icmp_error(lab_factory):
    lab = lab_factory.up()
    assert lab.node("bcc").run(["ip", "link", "set", "dev", "wg0", "mtu", "1280"]).returncode == 0
    res = run_trace("home", "target", lab.name, size=1400)
    assert not res.reachable
    assert any("need to frag (mtu 1280)" in e.summary for e in res.errors)


def test_udp_probe_to_a_closed_port_is_refused_like_tcp(seed_lab):
    res = run_trace("home", "target", seed_lab.name, udp=53)
    assert not res.reachable and res.refused and "port unreachable" in res.story_text()
    assert _inner(res, node="target", iface="ens192", dir="in", role="request")


def test_shell_on_a_node_runs_the_documents_commands(seed_lab):
    pexpect = pytest.importorskip("pexpect")
    import sys
    c = pexpect.spawn(sys.executable, ["-m", "wgtrace", "shell", "bcc", "--lab", seed_lab.name],
                      encoding="utf-8", timeout=20, dimensions=(40, 200))
    try:
        prompt = rf"\[{seed_lab.name}\] bcc:.*# "
        c.expect(prompt)
        c.sendline("wg show wg0 listen-port; hostname; iptables -S FORWARD | head -1")
        c.expect(prompt)
        assert "38371" in c.before and "bcc" in c.before and "-P FORWARD DROP" in c.before
        c.sendline("exit 3")
        c.expect(pexpect.EOF)
    finally:
        c.close()
    assert c.exitstatus == 3
