"""What comes back from a host, parsed without root: the WireGuard dump redacted on the host (the
awk program run here on a made-up dump), the pcap stream of tcpdump fed in pieces, iproute2's
JSON, the snapshot's sections; and the commands a host may be sent."""
from __future__ import annotations

import json
import random
import shutil
import struct
import os
import subprocess

import pytest

from wgtrace.nodes import sshstate as S
from wgtrace.nodes.guard import read_only as _read_only, wg_argv as _wg_argv
from wgtrace.nodes.sshcapture import PcapStream, capture_filter, capture_script, frame_of
from wgtrace.nodes.sshconn import Conn, explain
from wgtrace.nodes.wgstate import parse_dump
from wgtrace.trace.packets import arp_of, ip_payload, parse_ip

PRIV, PSK = "aPrivateKeyOfTheHostThatMustNeverLeaveIt0000=", "aPresharedKeyThatMustNotLeaveEither000000000="
PUB1, PUB2 = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=", "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
DUMP = (f"wg0\t{PRIV}\t{PUB1}\t51820\toff\n"
        f"wg0\t{PUB2}\t{PSK}\t203.0.113.13:38371\t192.168.2.0/24,10.10.13.0/24\t1700000000\t100\t200\t15\n"
        f"wg0\t{PUB1}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n"
        f"wg0\t{PRIV}\tsomething else\n")


@pytest.mark.skipif(not shutil.which("awk"), reason="no awk here")
def test_dump_redacted_by_the_awk_that_runs_on_the_host():
    out = subprocess.run(["sh", "-c", S.redact_command("")[len("wg show all dump | "):]], input=DUMP,
                         capture_output=True, text=True, check=True).stdout
    assert PRIV not in out and PSK not in out
    lines = out.splitlines()
    assert len(lines) == 3                        # the line of unknown shape is dropped, not passed on
    assert lines[0].split("\t") == ["wg0", "(hidden)", PUB1, "51820", "off"]
    assert lines[1].split("\t")[2] == "(hidden)" and lines[2].split("\t")[2] == "(none)"
    wg = parse_dump(out)
    assert wg[0].public_key == PUB1 and wg[0].listen_port == 51820
    assert [p.public_key for p in wg[0].peers] == [PUB2, PUB1]
    assert wg[0].peers[0].allowed_ips == ["192.168.2.0/24", "10.10.13.0/24"]


def test_no_command_that_prints_a_key_is_sent():
    for argv in (["wg", "showconf", "wg0"], ["wg", "show", "wg0", "private-key"], ["wg", "genkey"],
                 ["wg", "show", "wg0", "preshared-keys"], ["wg", "show", "wg0", "dump"]):
        with pytest.raises(PermissionError):
            _wg_argv(argv)
    assert _wg_argv(["wg", "show", "all", "dump"])[:2] == ["sh", "-c"]
    assert "awk" in _wg_argv(["wg", "show", "all", "dump"])[2]
    assert _wg_argv(["wg", "show", "interfaces"]) == ["wg", "show", "interfaces"]


def test_reads_and_changes_told_apart():
    for argv in (["iptables-save", "-c"], ["wg", "show", "all", "dump"], ["ip", "-j", "route", "get", "1.2.3.4"],
                 ["nft", "-j", "list", "ruleset"], ["nft", "-a", "list", "chain", "inet", "filter", "input"]):
        assert _read_only(argv)
    for argv in (["ip", "route", "add", "10.0.0.0/8", "dev", "wg0"], ["iptables", "-A", "FORWARD", "-j", "ACCEPT"],
                 ["sysctl", "-w", "net.ipv4.ip_forward=1"], ["wg", "set", "wg0", "peer", "K", "remove"],
                 ["ip", "link", "set", "wg0", "up"], ["nft", "delete", "rule", "inet", "filter", "input", "handle", "7"],
                 ["nft", "add", "rule", "inet", "list", "input", "accept"], ["nft", "-f", "/tmp/x"],
                 ["nft", "flush", "ruleset"], ["nft", "list ruleset; flush ruleset"]):
        assert not _read_only(argv)


def test_remote_command_is_quoted_words():
    c = Conn("home", "root@192.0.2.1", 2222, "/cfg", "/tmp/d", sudo=True)
    argv = c.command(["ip", "route", "add", "10.0.0.0/8; reboot", "dev", "wg0"])
    assert argv[:3] == ["ssh", "-F", "/cfg"] and "BatchMode=yes" in argv and argv[argv.index("-p") + 1] == "2222"
    assert argv[-3:-1] == ["--", "root@192.0.2.1"]
    assert "'10.0.0.0/8; reboot'" in argv[-1] and " sudo -n ip route add " in argv[-1]
    # what the host's shell makes of it: exactly the words given
    words = subprocess.run(["sh", "-c", argv[-1].replace('exec "$@"', 'printf "%s\\n" "$@"')],
                           capture_output=True, text=True).stdout.splitlines()
    assert words == ["sudo", "-n", "ip", "route", "add", "10.0.0.0/8; reboot", "dev", "wg0"]


def test_ssh_failures_become_one_sentence():
    for text, words in (("root@h: Permission denied (publickey,password).", "refused the login"),
                        ("ssh: connect to host h port 22: Connection refused", "refused the connection"),
                        ("Host key verification failed.", "host key"),
                        ("ssh: connect to host h port 22: Connection timed out", "cannot be reached"),
                        ("ssh: Could not resolve hostname h: Name or service not known", "does not resolve")):
        s = explain("home", "root@h", text)
        assert s.startswith("home (root@h)") and words in s and "\n" not in s


def _pcap(records, nano=True, endian="<", linktype=276) -> bytes:
    out = struct.pack(endian + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)
    for ts_ns, data, origlen in records:
        sec, ns = divmod(ts_ns, 1_000_000_000)
        out += struct.pack(endian + "IIII", sec, ns if nano else ns // 1000, len(data), origlen) + data
    return out


def _sll2(proto: int, ifindex: int, hatype: int, pkttype: int, payload: bytes) -> bytes:
    return struct.pack("!HHIHBB", proto, 0, ifindex, hatype, pkttype, 6) + b"\x02\x00\x00\x00\x00\x01\0\0" + payload


ICMP = bytes.fromhex("4500005400004000400100000a0000010a000002") + b"\x08\x00\x00\x00\x12\x34\x00\x01" + b"wgtrace:0000abcd" + b"\0" * 40
ARP = bytes.fromhex("0001080006040001") + b"\x02\0\0\0\0\x01" + bytes([10, 0, 0, 1]) + b"\0" * 6 + bytes([10, 0, 0, 2])


@pytest.mark.parametrize("endian, nano", [("<", True), (">", True), ("<", False)])
def test_pcap_stream_in_pieces(endian, nano):
    recs = [(1_700_000_000_123_456_789, _sll2(0x0800, 3, 1, 4, ICMP), 20 + len(ICMP)),
            (1_700_000_000_123_457_000, _sll2(0x0806, 3, 1, 0, ARP), 20 + len(ARP)),
            (1_700_000_000_200_000_000, _sll2(0x0800, 7, 65534, 0, ICMP[:40]), 20 + len(ICMP)),
            (1_700_000_000_300_000_000, _sll2(0x0800, 3, 1, 3, ICMP), 20 + len(ICMP))]
    blob = _pcap(recs, nano, endian)
    rng = random.Random(7)
    s, got, i = PcapStream(), [], 0
    while i < len(blob):                      # whatever sizes the pipe hands us
        n = rng.randint(1, 50)
        got += s.feed(blob[i:i + n])
        i += n
    assert s.linktype == 276 and not s.error and len(got) == 4
    names = {3: "eth0", 7: "wg0"}
    frames = [frame_of(s.linktype, *g, names) for g in got]
    f0, f1, f2, f3 = frames
    assert f0.iface == "eth0" and f0.outgoing and not f0.otherhost and f0.hatype == 1
    assert f0.ts_ns == (recs[0][0] if nano else recs[0][0] // 1000 * 1000)
    p = parse_ip(ip_payload(f0.data, f0.hatype))
    assert (p.src, p.dst, p.icmp_type, p.payload[:8]) == ("10.0.0.1", "10.0.0.2", 8, b"wgtrace:")
    assert arp_of(f1.data, f1.hatype) == (1, "10.0.0.1", "10.0.0.2") and not f1.outgoing
    # a frame cut at the snapshot length comes back at its full length (headers intact)
    assert f2.iface == "wg0" and f2.hatype == 65534 and len(f2.data) == len(ICMP) and f2.data[:40] == ICMP[:40]
    assert parse_ip(ip_payload(f2.data, f2.hatype)).length == 84
    assert f3.otherhost


def test_pcap_stream_rejects_garbage():
    s = PcapStream()
    assert s.feed(b"x" * 64) == [] and s.error
    assert frame_of(276, 0, 10, b"short", {}) is None


def test_capture_filter_compiles_for_both_families(tmp_path):
    """tcpdump itself compiles the filter (no capture: an empty pcap file of the link type it uses)."""
    import shutil
    import struct
    import subprocess
    if not shutil.which("tcpdump"):
        pytest.skip("tcpdump not installed")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 256, 276))    # LINUX_SLL2
    r = subprocess.run(["tcpdump", "-d", "-r", str(empty), capture_filter({51820})], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_capture_filter_is_tight():
    f = capture_filter({38371, 52796})
    assert "port 38371" in f and "port 52796" in f and "arp" in f
    assert "icmp[8:4] = 0x77677472" in f and "tcp[13] & 0x06 != 0" in f    # the mark; SYN or RST only
    assert "icmp6 and (ip6[40] = 1" in f and "ip6[48:4] = 0x77677472" in f and "ip6[53] & 0x06 != 0" in f
    script = capture_script({38371}, sudo=True)
    assert "sudo -n tcpdump -i any" in script and "--immediate-mode" in script and "-c 20000" in script
    assert "SSH_CONNECTION" in script and "cat >/dev/null" in script


IP_LINK = [{"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP"], "mtu": 65536, "address": "00:00:00:00:00:00"},
           {"ifindex": 2, "ifname": "eth0", "flags": ["BROADCAST", "UP", "LOWER_UP"], "mtu": 1500,
            "linkinfo": {"info_kind": "veth"}, "master": "br0", "address": "02:00:00:00:00:01"},
           {"ifindex": 5, "ifname": "wg0", "flags": ["POINTOPOINT", "NOARP"], "mtu": 1420,
            "linkinfo": {"info_kind": "wireguard"}}]
IP_ADDR = [{"ifindex": 5, "addr_info": [{"family": "inet", "local": "192.168.2.2", "prefixlen": 24}]},
           {"ifindex": 2, "addr_info": [{"family": "inet6", "local": "fe80::1", "prefixlen": 64}]}]
ROUTES = [{"dst": "default", "gateway": "192.168.0.1", "dev": "eth0", "flags": []},
          {"dst": "10.10.13.61", "gateway": "10.10.13.99", "dev": "eth0", "protocol": "static"},
          {"dst": "192.168.2.0/24", "dev": "wg0", "protocol": "kernel", "scope": "link"},
          {"dst": "default", "dev": "wg0", "table": "51820"},
          {"type": "local", "dst": "192.168.2.2", "dev": "wg0", "table": "local", "protocol": "kernel"}]


def test_iproute2_json():
    links, macs = S.parse_links(IP_LINK, IP_ADDR)
    assert links["eth0"].master == "br0" and links["eth0"].kind == "veth" and links["eth0"].up
    assert links["wg0"].addresses == ["192.168.2.2/24"] and not links["wg0"].up and links["wg0"].index == 5
    assert macs["eth0"] == "02:00:00:00:00:01"
    routes, types = S.parse_routes(ROUTES)
    assert [(r.dst, r.via, r.dev, r.proto, r.table) for r in routes] == [
        ("default", "192.168.0.1", "eth0", "boot", 254), ("10.10.13.61/32", "10.10.13.99", "eth0", "static", 254),
        ("192.168.2.0/24", None, "wg0", "kernel", 254), ("default", None, "wg0", "boot", 51820),
        ("192.168.2.2/32", None, "wg0", "kernel", 255)]
    assert types[-1] == "local"
    ok = S.parse_route_get(0, json.dumps([{"dst": "10.10.13.61", "gateway": "192.168.2.1", "dev": "wg0",
                                           "prefsrc": "192.168.2.2"}]), "")
    assert (ok.ok, ok.dev, ok.via, ok.type, ok.prefsrc) == (True, "wg0", "192.168.2.1", "unicast", "192.168.2.2")
    bad = S.parse_route_get(2, "", "RTNETLINK answers: Network is unreachable\n")
    assert not bad.ok and bad.error == "Network is unreachable"
    assert S.parse_neigh(json.dumps([{"dst": "10.0.0.1", "dev": "eth0", "state": ["FAILED"]}])) == [("eth0", "10.0.0.1", "FAILED")]
    assert S.parse_sysctl("/proc/sys/net/ipv4/ip_forward:1\n/proc/sys/net/ipv4/conf/wg0/rp_filter:2\n") == \
        {"net.ipv4.ip_forward": "1", "net.ipv4.conf.wg0.rp_filter": "2"}
    ct = ("ipv4     2 icmp     1 29 src=192.168.2.2 dst=10.10.13.61 type=8 code=0 id=7 src=10.10.13.61 "
          "dst=10.10.13.62 type=0 code=0 id=7 mark=0 use=2\n")
    assert S.parse_conntrack(ct, "192.168.2.2", "10.10.13.61") == [("192.168.2.2", "10.10.13.61", "10.10.13.61", "10.10.13.62")]


@pytest.mark.skipif(not shutil.which("sh"), reason="no sh")
def test_snapshot_sections_as_the_script_frames_them(tmp_path):
    """The snapshot's framing, run by a real sh with stand-ins for the host's commands."""
    fake_bin = tmp_path / "iptables-save"
    fake_bin.write_text("#!/bin/sh\necho denied >&2\nexit 1\n")
    fake_bin.chmod(0o755)
    script, mark = S.snapshot_script(sudo=False)
    fake = ("ip() { case \"$*\" in *link*) echo '" + json.dumps(IP_LINK) + "';; *addr*) echo '" + json.dumps(IP_ADDR)
            + "';; *route*) echo '" + json.dumps(ROUTES) + "';; *) echo '[]';; esac; }\n"
            "wg() { if [ \"$2\" = interfaces ]; then echo wg0; else printf '" + DUMP.replace("\t", "\\t").replace("\n", "\\n")
            + "'; fi; }\nbridge() { echo '[]'; }\n"
            "nft() { [ \"$*\" = '-j list ruleset' ] && echo '{\"nftables\": [{\"table\": {\"family\": \"inet\", "
            "\"name\": \"filter\", \"handle\": 1}}]}'; }\n")
    script = script.replace("sec id id -u", fake + "sec id id -u")
    import os
    out = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}).stdout
    st = S.parse_snapshot(out, mark)
    assert PRIV not in out and PSK not in out
    assert st.wg_ifaces == ["wg0"] and st.wg[0].public_key == PUB1
    assert set(st.links) == {"lo", "eth0", "wg0"} and st.routes[1].dst == "10.10.13.61/32"
    assert st.iptables == "" and st.iptables_error == "denied" and "iptables" in st.errors
    assert json.loads(st.nft)["nftables"][0]["table"]["name"] == "filter" and not st.nft_error


def test_native_nftables_reads_are_reads():
    for argv in (["nft", "-j", "list", "ruleset"], ["nft", "list", "table", "inet", "filter"], ["nft", "-a", "list", "ruleset"],
                 ["conntrack", "-L", "-f", "ipv4"], ["grep", "-H", ".", "/proc/sys/net/ipv4/ip_forward"]):
        assert _read_only(argv), argv
    for argv in (["nft", "add", "rule", "inet", "filter", "forward", "accept"], ["nft", "-f", "/tmp/x"],
                 ["nft", "flush", "ruleset"], ["nft", "delete", "table", "inet", "filter"], ["conntrack", "-F"],
                 ["nft", "list", "ruleset", ";", "flush"], ["nft", "list", "ruleset;add", "table", "x"],
                 ["grep", "-r", "x", "/"]):
        assert not _read_only(argv), argv


def test_capture_leaves_datagrams_inside_tunnels_out():
    f = capture_filter({51820}, {5, 7})
    assert "(udp and not ifindex 5 and not ifindex 7 and (port 51820))" in f
    assert "(udp and udp[8:4] = 0x77677472" in f        # the probe's own datagrams stay, wherever they are
    assert "ifindex" not in capture_filter({51820})


def test_the_shell_answers_in_order_with_stderr_apart():
    """Commands written at once to a host's shell: answers read back in order, stdout exact,
    stderr on the line that ends each answer. A real sh stands in for the host's."""
    from wgtrace.nodes.sshconn import Shell
    c = Conn("here", "localhost", None, None, "/tmp")
    sh = Shell(c)
    sh.proc = subprocess.Popen(["sh"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    os.set_blocking(sh.proc.stdout.fileno(), False)
    try:
        jobs = [sh.submit(["printf", "a\nb"]), sh.submit(["sh", "-c", "echo oops >&2; exit 3"]),
                sh.submit(["printf", "%s\n", "x; echo injected", "@@wgt-0"])]
        assert [j.result(5) for j in reversed(jobs)][::-1] == [(0, "a\nb", ""), (3, "", "oops"),
                                                               (0, "x; echo injected\n@@wgt-0\n", "")]
    finally:
        sh.close()
