"""What the hosts' snapshot reads of their wg-quick files, and how discovery matches PostUp lines to
running rules (wgtrace/nodes/sshstate.py's ``wgfiles`` section, wgtrace/wgquick/onhost.py)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from wgtrace.nodes.sshstate import WG_FILES_SH, parse_wg_files
from wgtrace.wgquick.keys import KEY_WORD_RE
from wgtrace.wgquick.onhost import _rule_shape

DATA = Path(__file__).resolve().parents[1] / "data" / "wgquick"


def test_the_files_leave_the_host_without_their_secrets(tmp_path):
    etc = tmp_path / "wireguard"
    etc.mkdir()
    server = (DATA / "angristan" / "wg0.conf").read_text()
    (etc / "wg0.conf").write_text(server + "PostUp = echo " + "A" * 43 + "= | wg set %i private-key /dev/stdin\n")
    (etc / "wg1.conf").write_text((DATA / "wg-easy" / "wg0.conf").read_text())
    (etc / "notes.txt").write_text("not a conf\n")
    r = subprocess.run(["sh", "-c", WG_FILES_SH.replace("/etc/wireguard", str(etc))],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    files = parse_wg_files(r.stdout)
    assert sorted(files) == [f"{etc}/wg0.conf", f"{etc}/wg1.conf"]
    got = files[f"{etc}/wg0.conf"]
    assert "PrivateKey" not in got and "PresharedKey" not in got and "A" * 43 not in got
    assert "PostUp = echo (key) | wg set wg0" not in got and "PostUp = echo (key) | wg set %i" in got
    keep = [l for l in server.splitlines() if not l.lower().startswith(("privatekey", "presharedkey"))]
    assert got.splitlines()[:len(keep)] == keep             # everything else as it is, public keys too
    for line in got.splitlines():
        assert not KEY_WORD_RE.search(line) or line.startswith("PublicKey")


@pytest.mark.parametrize("posted, saved", [
    ("-I INPUT -p udp --dport 49873 -j ACCEPT", "-t filter -A INPUT -p udp -m udp --dport 49873 -j ACCEPT"),
    ("-I FORWARD 1 -i wg0 -j ACCEPT", "-t filter -A FORWARD -i wg0 -j ACCEPT"),
    ("-t nat -A POSTROUTING -s 10.8.0.0/24 -o eth0 -j MASQUERADE",
     "-t nat -A POSTROUTING -s 10.8.0.0/24 -o eth0 -j MASQUERADE"),
    ("-t nat -I POSTROUTING -o eth0 --source 10.8.0.2 -j SNAT --to 203.0.113.5",
     "-t nat -A POSTROUTING -s 10.8.0.2/32 -o eth0 -j SNAT --to 203.0.113.5"),
])
def test_a_postup_rule_is_the_running_rule_iptables_save_shows(posted, saved):
    assert _rule_shape(posted) == _rule_shape(saved)


@pytest.mark.parametrize("posted, saved", [
    ("-I FORWARD -i wg0 -j ACCEPT", "-t filter -A FORWARD -o wg0 -j ACCEPT"),
    ("-I FORWARD -i wg0 -j ACCEPT", "-t filter -A INPUT -i wg0 -j ACCEPT"),
    ("-t nat -A POSTROUTING -o eth0 -j MASQUERADE", "-t filter -A POSTROUTING -o eth0 -j MASQUERADE"),
    ("-A FORWARD ! -i wg0 -j DROP", "-t filter -A FORWARD -i wg0 -j DROP"),
])
def test_other_rules_are_not(posted, saved):
    assert _rule_shape(posted) != _rule_shape(saved)
