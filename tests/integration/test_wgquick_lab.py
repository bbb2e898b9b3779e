"""An imported lab is a lab that works, and wg-quick in it is the real one.

- The files five installers write (angristan, Nyr, PiVPN, wg-easy, Algo: tests/data/wgquick/),
  imported, built as real labs (wg-quick up in every node) and checked pair by pair: every
  client reaches the internet host through its full tunnel, over IPv4 now; the IPv6 checks of
  the dual-stack ones need IPv6 probes (issue 17), and strict xfail records that they fail until
  then (and notices when they start to pass).
- A node's state after ``lab up`` is what wg-quick makes on a machine: the same file brought up
  by hand with wg-quick in a plain namespace of the test's own gives the same rules, routes,
  nft table, MTU, fwmark and sysctl.
- ``lab export`` of every lab in labs/, then ``lab import``: the same lab up to keys
  (tests/roundtrip_support.py), and it builds and passes its checks.
"""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest

from roundtrip_support import differences
from wgtrace.model.labfile import available_labs, load_lab
from wgtrace.wgquick import import_files

DATA = Path(__file__).resolve().parents[1] / "data" / "wgquick"
SETS = {"pivpn": ["wg0.conf", "configs/laptop.conf", "configs/phone.conf"],
        "angristan": ["wg0.conf", "wg0-client-alice.conf", "wg0-client-bob.conf"],
        "wg-easy": ["wg0.conf", "alice.conf", "bob.conf"],
        "nyr": ["wg0.conf", "phone.conf", "laptop.conf"],
        "algo": ["wg0.conf", "phone.conf", "laptop.conf"]}
DUAL_STACK = ("angristan", "wg-easy", "nyr", "algo")


def imported_lab(lab_factory, tmp_path, installer: str):
    first, *rest = SETS[installer]
    r = import_files([("server", DATA / installer / first)] + [(None, DATA / installer / f) for f in rest])
    path = tmp_path / "imported.toml"
    path.write_text(r.text())
    return r, lab_factory.up(lab_file=str(path))


def six_check(check) -> bool:
    return check.family == 6 or ":" in check.dst


def checked(lab, keep):
    """check --all over the lab's checks that ``keep`` keeps."""
    from wgtrace.teach.checks import check_all
    with lab.net() as net:
        only = dataclasses.replace(net, model=dataclasses.replace(net.model, checks=tuple(
            c for c in net.model.checks if keep(c))))
        return check_all(only)


@pytest.mark.parametrize("installer", sorted(SETS))
def test_imported_lab_reaches_the_internet_over_ipv4(installer, lab_factory, tmp_path):
    r, lab = imported_lab(lab_factory, tmp_path, installer)
    matrix = checked(lab, lambda c: not six_check(c))
    clients = {c["src"] for c in r.lab["checks"] if c["dst"] == "web"}
    assert clients == {n for n in r.lab["nodes"] if r.lab["nodes"][n]["description"].startswith("from ")} - {"server"}
    assert {x.check.src for x in matrix.results if x.check.dst == "web"} == clients
    assert matrix.passed, [(x.check.src, x.check.dst, x.cause, x.stop) for x in matrix.results if not x.ok]


@pytest.mark.parametrize("installer", DUAL_STACK)
def test_imported_lab_reaches_the_internet_over_ipv6(installer, lab_factory, tmp_path):
    r, lab = imported_lab(lab_factory, tmp_path, installer)
    assert any(six_check(c) for c in lab.model.checks)
    matrix = checked(lab, six_check)
    assert matrix.passed, [(x.check.src, x.check.dst, x.cause, x.stop) for x in matrix.results if not x.ok]


# --- the node's state is wg-quick's --------------------------------------------------------------

READS = [["ip", "-j", "-4", "rule"], ["ip", "-j", "-6", "rule"],
         ["ip", "-j", "-4", "route", "show", "table", "all"], ["ip", "-j", "-6", "route", "show", "table", "all"],
         ["nft", "-j", "list", "ruleset"], ["ip", "-j", "link", "show"], ["ip", "-j", "addr", "show"],
         ["wg", "show", "all", "fwmark"], ["sysctl", "-n", "net.ipv4.conf.all.src_valid_mark"]]


def wg_quick_state(outputs: list[str], iface: str) -> dict:
    """What wg-quick makes, out of the reads: rules, routes into the interface (link-local ones
    aside: their address is random), the wg-quick-* nft tables, the interface's MTU, addresses and
    fwmark, src_valid_mark."""
    rules4, rules6, routes4, routes6, nft, links, addrs, fwmark, svm = outputs
    def routes(text):
        return sorted((json.dumps(r, sort_keys=True) for r in json.loads(text) if r.get("dev") == iface
                       and not r["dst"].startswith(("fe80", "ff00"))))
    def ours(x):
        return any(isinstance(v, dict) and str(v.get("table", v.get("name", ""))).startswith("wg-quick-")
                   for v in x.values())
    nft = re.sub(r'"fe80:[0-9a-f:]+"', '"fe80::(random)"', nft)      # the anti-spoof rule of its link-local address
    tables = [{k: {kk: vv for kk, vv in v.items() if kk != "handle"} for k, v in x.items()}
              for x in json.loads(nft)["nftables"] if "metainfo" not in x and ours(x)]
    link = next(l for l in json.loads(links) if l["ifname"] == iface)
    addr = next(a for a in json.loads(addrs) if a["ifname"] == iface)
    return {"rules4": json.loads(rules4), "rules6": json.loads(rules6), "routes4": routes(routes4),
            "routes6": routes(routes6), "nft": tables, "mtu": link["mtu"],
            "addresses": sorted(f"{a['local']}/{a['prefixlen']}" for a in addr["addr_info"]
                                if not a["local"].startswith("fe80")),
            "fwmark": fwmark.split(), "src_valid_mark": svm.strip()}


def by_hand(conf: Path, eth0: str, gateway: str, tmp_path: Path) -> list[str]:
    """wg-quick up CONF in a plain namespace of our own (network, mount, PID: when its first
    process ends, the kernel ends wireguard-go with it, and the namespace goes), on a link with
    the node's address and default gateway; the reads' outputs."""
    script = ["set -e", "mount -t tmpfs tmpfs /run",
              "ip link add eth0 type veth peer name eth0p", "ip link set lo up", "ip link set eth0p up",
              "ip link set eth0 up", f"ip addr add {eth0} dev eth0", f"ip route add default via {gateway}",
              f"wg-quick up {conf} 2>{tmp_path}/wg-quick.log"]
    for i, argv in enumerate(READS):
        script.append(" ".join(argv) + f" > {tmp_path}/read{i}")
    r = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "bash", "-c",
                        "\n".join(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + (tmp_path / "wg-quick.log").read_text()
    return [(tmp_path / f"read{i}").read_text() for i in range(len(READS))]


@pytest.mark.parametrize("installer, node", [("angristan", "alice"), ("pivpn", "server")])
def test_a_nodes_state_is_what_wg_quick_makes(installer, node, lab_factory, tmp_path):
    r, lab = imported_lab(lab_factory, tmp_path, installer)
    h = lab.node(node)
    (iface,) = lab.model.nodes[node].wireguard
    (wan, (cidr, *_)), = [(i, c) for i, c in lab.model.nodes[node].addresses.items()]
    gateway = next(x.via for x in lab.model.nodes[node].routes if x.dst == "default" and x.family == 4)
    conf = tmp_path / "by-hand" / f"{iface}.conf"
    conf.parent.mkdir(mode=0o700)
    conf.write_text((h.home_dir / f"{iface}.conf").read_text())      # the lab's file, its keys included
    conf.chmod(0o600)
    in_lab = wg_quick_state([h.run(argv).stdout for argv in READS], iface)
    made = wg_quick_state(by_hand(conf, cidr, gateway, tmp_path), iface)
    assert in_lab == made
    if node == "alice":         # a full tunnel of both families
        assert in_lab["fwmark"] == [iface, "0xca6c"] and in_lab["src_valid_mark"] == "1"
        assert [x.get("table") for x in in_lab["rules4"] if x.get("suppress_prefixlen") == 0] == ["main"]
        assert any(x.get("fwmark") == "0xca6c" and "not" in x for x in in_lab["rules6"])
        assert any(t.get("table", {}).get("name") == f"wg-quick-{iface}" for t in in_lab["nft"])
    assert in_lab["mtu"] == 1420
    from wgtrace.lab.status import network_status
    with lab.net() as net:
        (q,) = next(n for n in network_status(net).nodes if n.name == node).wg_quick
    assert (q.iface, q.mtu, q.dns_applied) == (iface, 1420, False)
    if node == "alice":         # lab status shows what wg-quick made, and the DNS it did not apply
        assert q.fwmark == 51820 and len(q.rules) == 4 and sorted(q.nft_tables) == ["ip wg-quick-wg0", "ip6 wg-quick-wg0"]
        assert q.dns == ["1.1.1.1", "1.0.0.1"]
    else:
        assert (q.fwmark, q.rules, q.nft_tables, q.dns) == (0, [], [], [])


# --- lab export, then lab import -----------------------------------------------------------------

@pytest.mark.parametrize("lab_name", available_labs())
def test_exported_lab_imports_as_itself_and_builds(lab_name, lab_factory, cli, tmp_path):
    lab = lab_factory.up(lab_file=lab_name)
    out = tmp_path / "export"
    r = cli("lab", "export", str(out), "--lab", lab.name)
    assert r.returncode == 0, r.stderr
    files = sorted(out.glob("*/*.conf"))
    assert {p.parent.name for p in files} == {n for n, x in lab.model.nodes.items() if x.wireguard}
    back_file = tmp_path / "back.toml"
    r = cli("lab", "import", *[f"{p.parent.name}={p}" for p in files], "-o", str(back_file), "--name", "back")
    assert r.returncode == 0, r.stderr
    back = load_lab(str(back_file))
    assert differences(lab.model, back) == []
    rebuilt = lab_factory.up(lab_file=str(back_file))
    matrix = checked(rebuilt, lambda c: True)
    assert matrix.passed, [(x.check.src, x.check.dst, x.cause, x.stop) for x in matrix.results if not x.ok]


def test_wg_quick_failing_in_a_node_is_one_sentence_and_leaves_nothing(lab_factory, tmp_path):
    """Table = main with a full tunnel: wg-quick adds 0.0.0.0/0 to the main table beside the
    node's default route, the kernel refuses (as on a machine), wg-quick takes the interface down."""
    from wgtrace.errors import BuildError
    from conftest import lab_leftovers
    r = import_files([("server", DATA / "pivpn" / "wg0.conf"), ("laptop", DATA / "pivpn" / "configs" / "laptop.conf")])
    text = r.text().replace('[nodes.laptop.wireguard.laptop]\nwg_quick = true\n',
                            '[nodes.laptop.wireguard.laptop]\nwg_quick = true\ntable = "main"\n')
    path = tmp_path / "main.toml"
    path.write_text(text)
    name = lab_factory.fresh_name()
    with pytest.raises(BuildError) as e:
        from wgtrace.lab.build import lab_up
        lab_up(load_lab(str(path), rename=name))
    assert e.value.message == "stage 'base' failed on laptop: RTNETLINK answers: File exists"
    assert lab_leftovers(name) == []
