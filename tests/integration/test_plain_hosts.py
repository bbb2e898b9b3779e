"""``--hosts`` on networks wgtrace did not build, as a new user tries it.

Each network is typed with plain ``ip``/``iptables``/``nft``/``wg``/``wireguard-go``/``wg-quick``
commands (tests/plain_net.py, tests/plain_shapes.py), every machine runs the distribution's sshd
with its stock sshd_config (MaxSessions 10, MaxStartups 10:30:100), and wgtrace runs on a
controller that reaches them over a management network, with a hosts file written like the first
example of docs/hosts.md (no ``ignore``). Checked: the healthy seed network is reachable and its
names resolve to the path, not to the management network; faults inside machines left out of the
hosts file are named as the gap (a NAT router whose MASQUERADE is gone, a router dropping the
WireGuard port); the internet as a destination behind a full tunnel set up by an installer
(dual-stack allowed-ips), with its NAT missing; a native nft table dropping; roaming and silent
peers and a tunnel routed into itself, each with its fix applied; wgtrace on one of the hosts
(``local = true``); an Ansible inventory; every host unchanged by a diagnosis without --fix;
two SSH sessions per host at most; a host whose sshd refuses a session says so; 50 hosts, the
capture only on the predicted path. Every network is torn down, also after a failure.
"""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

import plain_shapes as P
from plain_net import PlainNet, Sessions

pytestmark = pytest.mark.lab
_names = itertools.count(1)


@pytest.fixture
def plain():
    """A factory of reference networks: ``plain(shape, **kw) -> (net, hosts)``; all removed after."""
    made = []

    def make(shape, **kw):
        net = PlainNet(f"p{os.getpid() % 10000}{next(_names)}")
        made.append(net)
        hosts = getattr(P, shape)(net, **kw)
        net.controller(hosts)
        return net, hosts
    yield make
    for net in made:
        net.down()
        assert net.leftovers() == [], net.leftovers()


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts"


def record(net, case: str, hf: str, src: str, dst: str, want: tuple) -> None:
    """With WGTRACE_RECORD=1: the diagnosis again, in process, saved with everything the rules were
    given (tests/unit/test_replay_hosts.py replays it without root)."""
    if os.environ.get("WGTRACE_RECORD") != "1":
        return
    from wgtrace.diagnose.replay import dump_context
    d = net.diagnose_here(hf, src, dst)
    v = d.verdict
    assert (v.cause, v.stop.node if v.stop else None, v.stop.phase if v.stop else None) == want, v.meaning()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / f"{case}.json").write_text(json.dumps({"case": case, "verdict": v.meaning(),
                                                       "context": dump_context(d.context)}, indent=1) + "\n")


def verdict(r) -> tuple:
    j = json.loads(r.stdout)
    return j["cause"], (j["stop"] or {}).get("node"), (j["stop"] or {}).get("phase")


def keys_of(j: dict) -> list[str]:
    return [e["detail"] for e in j["evidence"]]


def test_seed_without_ignore_healthy_and_broken(plain):
    net, hosts = plain("seed")
    hf = net.hosts_file("hosts.toml", hosts)
    with Sessions(net) as s:
        r = net.wgtrace("diagnose", "home", "target", "--hosts", hf, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    j = json.loads(r.stdout)
    assert j["dst_ip"] == "10.10.13.61"                 # the path's address, never the management one
    assert "mgmt0" not in r.stdout and r.stderr.strip() == ""
    assert {h["node"] for h in j["hops"]} >= {"home", "bcc", "company", "target"}
    assert s.peak and max(s.peak.values()) <= 2, s.peak          # a stock sshd's MaxSessions 10: room to spare
    r = net.wgtrace("trace", "company", "target", "--hosts", hf, "--json")
    t = json.loads(r.stdout)
    assert t["reachable"] and {h["node"] for h in t["hops"]} == {"company", "target"}   # the source's own frames too
    net.iptables("company", "-D", "FORWARD", "-i", "ens192", "-o", "wg0", "-j", "ACCEPT")
    r = net.wgtrace("diagnose", "home", "target", "--hosts", hf, "--json")
    assert verdict(r) == ("forward-filtered", "company", "reply"), r.stdout + r.stderr


def test_diagnosis_changes_nothing_on_any_host(plain):
    net, hosts = plain("seed")
    hf = net.hosts_file("hosts.toml", hosts)
    net.iptables("bcc", "-D", "FORWARD", "-i", "wg0", "-j", "ACCEPT")
    net.iptables("bcc", "-D", "FORWARD", "-o", "wg0", "-j", "ACCEPT")
    before = {n: net.state(n) for n in hosts}
    for args in (["diagnose", "home", "target", "--json"], ["trace", "home", "target", "--json"],
                 ["status", "--json"], ["diagnose", "home", "target", "--fix"]):
        r = net.wgtrace(*args, "--hosts", hf)
        assert r.returncode in (0, 1), r.stderr
    after = {n: net.state(n) for n in hosts}
    for n in hosts:
        for k in before[n]:
            assert after[n][k] == before[n][k], (n, k)
    assert "not run on bcc" in r.stderr


def test_faults_inside_boxes_out_of_view(plain):
    net, _ = plain("seed")
    hf = net.hosts_file("peers.toml", P.SEED_PEERS)
    r = net.wgtrace("diagnose", "home", "target", "--hosts", hf, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    # a router on the way drops WireGuard's port
    net.iptables("internet", "-I", "FORWARD", "-p", "udp", "--dport", "38371", "-j", "DROP")
    r = net.wgtrace("diagnose", "home", "target", "--hosts", hf, "--json")
    j = json.loads(r.stdout)
    assert verdict(r) == ("lost-between", "home", "request"), r.stdout
    assert j["stop"]["iface"] == "wlp2s0" and j["fix"] == []
    assert any("UDP port 38371" in d and "192.168.0.1" in d for d in keys_of(j)), keys_of(j)
    record(net, "router-drops-wireguard-port", hf, "home", "target", ("lost-between", "home", "request"))
    net.iptables("internet", "-D", "FORWARD", "-p", "udp", "--dport", "38371", "-j", "DROP")
    # the home NAT router loses its MASQUERADE (and, as after a restart, what it had translated)
    net.iptables("home-router", "-t", "nat", "-D", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE", "--random-fully")
    net.ip("home-router", "addr", "del", "198.51.100.14/24", "dev", "wan")
    net.ip("home-router", "addr", "add", "198.51.100.14/24", "dev", "wan")
    net.ip("home-router", "route", "add", "default", "via", "198.51.100.1")
    r = net.wgtrace("diagnose", "home", "target", "--hosts", hf, "--json")
    j = json.loads(r.stdout)
    assert verdict(r) == ("lost-between", "bcc", "reply"), r.stdout
    assert any("MASQUERADE" in d and "192.168.0.1" in d for d in keys_of(j)), keys_of(j)
    assert any("untranslated" in d and "192.168.0.9" in d for d in keys_of(j)), keys_of(j)
    record(net, "nat-router-masquerade-gone", hf, "home", "target", ("lost-between", "bcc", "reply"))


def test_internet_behind_a_full_tunnel(plain):
    net, hosts = plain("installer")
    peers = net.hosts_file("peers.toml", ["alice", "vps"])
    everyone = net.hosts_file("hosts.toml", hosts)
    for hf in (peers, everyone):
        r = net.wgtrace("diagnose", "alice", P.WEB, "--hosts", hf, "--json")
        assert r.returncode == 0, r.stdout + r.stderr          # dual-stack allowed-ips: 0.0.0.0/0, ::/0
        j = json.loads(r.stdout)
        assert j["dst_ip"] == P.WEB and any(h["node"] == "vps" and h["iface"] == "eth0" for h in j["hops"])
    net.iptables("vps", "-t", "nat", "-D", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE")
    for hf in (peers, everyone):
        r = net.wgtrace("diagnose", "alice", P.WEB, "--hosts", hf, "--json")
        j = json.loads(r.stdout)
        assert verdict(r) == ("nat-missing", "vps", "reply"), r.stdout
        assert [f["command"] for f in j["fix"]] == ["iptables -t nat -A POSTROUTING -s 10.66.66.0/24 -o eth0 -j MASQUERADE"]
        record(net, f"internet-nat-missing-{'peers' if hf == peers else 'all'}", hf, "alice", P.WEB,
               ("nat-missing", "vps", "reply"))
    r = net.wgtrace("diagnose", "alice", P.WEB, "--hosts", peers, "--fix", "--yes", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["reachable"], r.stdout + r.stderr
    # the destination itself stops answering: nothing in view can fix that
    net.iptables("web", "-A", "INPUT", "-p", "icmp", "-j", "DROP")
    r = net.wgtrace("diagnose", "alice", P.WEB, "--hosts", peers, "--json")
    j = json.loads(r.stdout)
    assert verdict(r) == ("lost-between", "vps", "request") and j["fix"] == [], r.stdout
    assert any("answers at all" in d for d in keys_of(j))
    record(net, "internet-destination-silent", peers, "alice", P.WEB, ("lost-between", "vps", "request"))
    # a destination by name: resolved once, the address shown
    r = net.wgtrace("diagnose", "alice", "localhost", "--hosts", peers, "--json")
    assert json.loads(r.stdout)["dst_ip"] == "127.0.0.1", r.stdout + r.stderr


def test_roaming_peer_behind_nat(plain):
    net, _ = plain("seed")
    hf = net.hosts_file("peers.toml", P.SEED_PEERS)
    for node, other in (("home", "bcc"), ("bcc", "home")):      # nobody keeps the NAT's mapping alive
        net.on(node, ["wg", "set", "wg0", "peer", net.key(other), "persistent-keepalive", "0"])
    # the home router's public address changes (a new lease): its mappings go with the old one
    net.ip("home-router", "addr", "del", "198.51.100.14/24", "dev", "wan")
    net.ip("home-router", "addr", "add", "198.51.100.15/24", "dev", "wan")
    net.ip("home-router", "route", "add", "default", "via", "198.51.100.1")
    r = net.wgtrace("diagnose", "company", "home", "--hosts", hf, "--json")
    j = json.loads(r.stdout)
    assert verdict(r) == ("wg-no-handshake", "bcc", "request"), r.stdout
    assert [(f["node"], f["command"]) for f in j["fix"]] == \
        [("home", f"wg set wg0 peer {net.key('bcc')} persistent-keepalive 25")]
    assert any("as soon as home sends bcc anything" in d for d in keys_of(j))
    record(net, "roaming-nat-address-changed", hf, "company", "home", ("wg-no-handshake", "bcc", "request"))
    r = net.wgtrace("diagnose", "company", "home", "--hosts", hf, "--fix", "--yes", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["reachable"], r.stdout + r.stderr


def test_silent_peer_without_endpoint(plain):
    net, _ = plain("seed")
    hf = net.hosts_file("peers.toml", P.SEED_PEERS)
    net.on("home", ["wg", "set", "wg0", "peer", net.key("bcc"), "persistent-keepalive", "0"])
    # bcc's entry for home made anew: it no longer knows where home is, and home says nothing
    net.on("bcc", ["wg", "set", "wg0", "peer", net.key("home"), "remove"])
    net.on("bcc", ["wg", "set", "wg0", "peer", net.key("home"), "allowed-ips", "192.168.2.2/32"])
    r = net.wgtrace("diagnose", "company", "home", "--hosts", hf, "--json")
    j = json.loads(r.stdout)
    assert verdict(r) == ("wg-no-handshake", "bcc", "request"), r.stdout
    assert any("home has to speak first" in d for d in keys_of(j)), keys_of(j)
    assert {f["node"] for f in j["fix"]} == {"home"} and "persistent-keepalive 25" in j["fix"][-1]["command"]
    record(net, "silent-peer-without-endpoint", hf, "company", "home", ("wg-no-handshake", "bcc", "request"))
    r = net.wgtrace("diagnose", "company", "home", "--hosts", hf, "--fix", "--yes", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["reachable"], r.stdout + r.stderr


def test_full_tunnel_routed_into_itself(plain):
    net, _ = plain("installer")
    hf = net.hosts_file("peers.toml", ["alice", "vps"])
    net.on("alice", ["wg", "set", "wg0", "fwmark", "0"])         # the mark wg-quick set is lost
    r = net.wgtrace("diagnose", "alice", P.WEB, "--hosts", hf, "--json", timeout=60)
    j = json.loads(r.stdout)
    assert verdict(r) == ("route-missing", "alice", "request"), r.stdout
    assert [f["command"] for f in j["fix"]] == ["wg set wg0 fwmark 51820"]
    assert any("routing loop" in d for d in keys_of(j))
    record(net, "full-tunnel-fwmark-lost", hf, "alice", P.WEB, ("route-missing", "alice", "request"))
    r = net.wgtrace("diagnose", "alice", P.WEB, "--hosts", hf, "--fix", "--yes", "--json", timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["reachable"], r.stdout + r.stderr


def test_native_nft_table_dropping(plain):
    pytest.importorskip("wgtrace.diagnose.firewall.nft", reason="the native nftables provider is another helper's")
    net, hosts = plain("seed")
    hf = net.hosts_file("hosts.toml", hosts)
    net.nft("company", "table inet filter {\n chain forward {\n  type filter hook forward priority 0; policy accept;\n"
                       "  iifname \"ens192\" oifname \"wg0\" counter drop\n }\n}\n")
    r = net.wgtrace("diagnose", "home", "target", "--hosts", hf, "--json")
    j = json.loads(r.stdout)
    assert verdict(r) == ("forward-filtered", "company", "reply"), r.stdout
    assert any(e["kind"] == "nft" for e in j["evidence"])


def test_wgtrace_on_one_of_the_hosts(plain):
    net, hosts = plain("seed")
    hf = net.hosts_file("local.toml", hosts, extra={"home": "local = true\n"})
    r = net.wgtrace("diagnose", "home", "target", "--hosts", hf, "--json", on="home")
    assert r.returncode == 0, r.stdout + r.stderr
    assert any(h["node"] == "home" and h["iface"] == "wg0" for h in json.loads(r.stdout)["hops"])
    net.iptables("company", "-D", "FORWARD", "-i", "wg0", "-o", "ens192", "-j", "ACCEPT")
    r = net.wgtrace("diagnose", "home", "target", "--hosts", hf, "--json", on="home")
    assert verdict(r) == ("forward-filtered", "company", "request"), r.stdout + r.stderr
    assert r.stderr.strip() == ""


def test_ansible_inventory(plain):
    net, hosts = plain("seed")
    home = net.home("ctl")
    lines = ["[vpn]"] + [f"{n} ansible_host={net.mgmt[n]} ansible_user=root" for n in P.SEED_PEERS] + \
        ["", "[routers]"] + [f"{n} ansible_host={net.mgmt[n]}" for n in hosts if n not in P.SEED_PEERS] + \
        ["", "[all:vars]", f"ansible_ssh_common_args='-o UserKnownHostsFile={home}/known_hosts "
                           f"-o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes'",
         f"ansible_ssh_private_key_file={home}/id_ed25519", "wireguard_port=51820", ""]
    (home / "inventory.ini").write_text("\n".join(lines))
    r = net.wgtrace("diagnose", "home", "target", "--hosts", str(home / "inventory.ini"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    r = net.wgtrace("diagnose", "home", "target", "--hosts", str(home / "inventory.ini"), "--only", "vpn", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert {h["node"] for h in json.loads(r.stdout)["hops"]} <= set(P.SEED_PEERS)
    # an option that would run a command: refused before anything is contacted
    (home / "bad.ini").write_text(f"[g]\nhome ansible_host={net.mgmt['home']} "
                                  f"ansible_ssh_extra_args='-o ProxyCommand=touch {home}/pwned'\n")
    with Sessions(net) as s:
        r = net.wgtrace("diagnose", "home", "target", "--hosts", str(home / "bad.ini"))
    assert r.returncode == 6 and "run a command" in r.stderr and "Traceback" not in r.stderr
    assert not (home / "pwned").exists() and not s.peak


def _sshd_with(net, node: str, line: str) -> None:
    """Restart ``node``'s sshd with one line added to its (otherwise stock) sshd_config."""
    etc = net.dir / node / "etc-ssh" / "sshd_config"
    etc.write_text(open("/etc/ssh/sshd_config").read() + f"\n{line}\n")
    net.on(node, ["sh", "-c", 'kill "$(cat /run/sshd.pid)"; while [ -e /run/sshd.pid ]; do sleep 0.01; done'])
    net.on(node, ["/usr/sbin/sshd"], binds=("run", "root", "etc-ssh"))


def test_a_host_whose_sshd_refuses_sessions(plain):
    net, hosts = plain("seed")
    hf = net.hosts_file("hosts.toml", hosts)
    _sshd_with(net, "target", "MaxSessions 1")       # no second session on a connection: ssh opens another
    r = net.wgtrace("trace", "home", "target", "--hosts", hf, "--json")
    assert r.returncode == 0 and r.stderr.strip() == "", r.stdout + r.stderr
    assert any(h["node"] == "target" for h in json.loads(r.stdout)["hops"])     # never silently fewer frames
    _sshd_with(net, "target", "MaxSessions 0")       # no session at all
    r = net.wgtrace("diagnose", "home", "10.10.13.61", "--hosts", hf, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    warn = [l for l in r.stderr.splitlines() if "target" in l]
    assert len(warn) == 1 and "refused to open a session" in warn[0] and "MaxSessions" in warn[0], r.stderr
    assert any(e["node"] == "target" and e["kind"] == "unseen" for e in json.loads(r.stdout)["evidence"])
    assert "Traceback" not in r.stderr


def test_fifty_hosts_captured_on_the_predicted_path(plain):
    net, hosts = plain("hub", spokes=49)
    assert len(hosts) == 50
    hf = net.hosts_file("hosts.toml", hosts)
    with Sessions(net) as s:
        r = net.wgtrace("diagnose", "spoke1", "10.99.1.49", "--hosts", hf, "--json", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert s.captured == {"spoke1", "relay", "spoke49"}, s.captured
    assert max(s.peak.values()) <= 2
    net.on("relay", ["wg", "set", "wg0", "peer", net.key("spoke49"), "allowed-ips", "10.99.1.48/32"])
    r = net.wgtrace("diagnose", "spoke1", "10.99.1.49", "--hosts", hf, "--json", timeout=180)
    assert verdict(r) == ("wg-allowed-ips", "relay", "request"), r.stdout + r.stderr
