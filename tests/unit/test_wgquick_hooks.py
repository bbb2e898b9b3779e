"""Hook lines as data (wgtrace/wgquick/hooks.py, commands.py): what becomes a lab-file rule, sysctl,
route or policy, and the one reason for everything that does not. Nothing here runs a command:
the tests would notice (a marker file that a hook would create stays absent)."""
from __future__ import annotations

import pytest

from wgtrace.wgquick.hooks import read_hooks
from wgtrace.wgquick.parse import parse_bytes


def reading(*lines: str, name: str = "wg0.conf"):
    text = "[Interface]\nAddress = 10.8.0.1/24\n" + "".join(f"{ln}\n" for ln in lines)
    f, errs = parse_bytes(text.encode(), name)
    assert errs == []
    return read_hooks(f)


def actions(*lines: str):
    return [(a.kind, a.value) for a in reading(*lines).actions]


def why(line: str) -> list[str]:
    return [s.params["why"][1].split(".")[1] for s in reading(line).skipped]


@pytest.mark.parametrize("line, expected", [
    ("PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE",
     [("iptables", "-A FORWARD -i wg0 -j ACCEPT"), ("iptables", "-t nat -A POSTROUTING -o eth0 -j MASQUERADE")]),
    ("PostUp = ip6tables -w 5 -I FORWARD -s fd42::/64 -j ACCEPT && /usr/sbin/iptables-nft -I INPUT 1 -p udp --dport 51820 -j ACCEPT",
     [("ip6tables", "-I FORWARD -s fd42::/64 -j ACCEPT"), ("iptables", "-I INPUT 1 -p udp --dport 51820 -j ACCEPT")]),
    ("PostUp = iptables -C INPUT -p udp --dport 5 -j ACCEPT 2>/dev/null || iptables -I INPUT -p udp --dport 5 -j ACCEPT",
     [("iptables", "-I INPUT -p udp --dport 5 -j ACCEPT")]),
    ("PostUp = WAN=ens3; iptables -t nat -A POSTROUTING -o ${WAN} -j MASQUERADE",
     [("iptables", "-t nat -A POSTROUTING -o ens3 -j MASQUERADE")]),
    ("PostUp = sysctl -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null",
     [("sysctl", ("net.ipv4.ip_forward", "1")), ("sysctl", ("net.ipv6.conf.all.forwarding", "1"))]),
    ("PostUp = echo 1 > /proc/sys/net/ipv4/ip_forward", [("sysctl", ("net.ipv4.ip_forward", "1"))]),
    ("PostUp = sysctl -q net/ipv4/conf/all/src_valid_mark=1 || true",
     [("sysctl", ("net.ipv4.conf.all.src_valid_mark", "1"))]),
    ("PostUp = iptables -P FORWARD DROP; ip6tables -P FORWARD ACCEPT",
     [("policy", ("FORWARD", "DROP")), ("policy6", ("FORWARD", "ACCEPT"))]),
    ("PostUp = ip route add 10.10.0.0/16 via 10.8.0.2 dev %i; ip -6 route add default dev %i table 200",
     [("route", {"dst": "10.10.0.0/16", "via": "10.8.0.2", "dev": "wg0"}),
      ("route", {"dst": "::/0", "dev": "wg0", "table": 200})]),
    ("PostUp = ip rule add not fwmark 0xca6c table 51820; ip -6 rule add table main suppress_prefixlength 0",
     [("rule", {"fwmark": 51820, "not": True, "table": 51820}),
      ("rule", {"table": "main", "suppress_prefixlength": 0, "family": 6})]),
    ("PostUp = ip address add fd00::1/64 dev %i", [("address", "fd00::1/64")]),
    ("PreUp = ", []),
    ("PostUp = true", []),
])
def test_commands_a_lab_file_can_say(line, expected):
    assert actions(line) == expected
    assert reading(line).skipped == []


@pytest.mark.parametrize("line, reasons", [
    ("PostUp = firewall-cmd --zone=public --add-interface=wg0 && firewall-cmd --add-port 51820/udp",
     ["firewalld", "firewalld"]),
    ("PostUp = iptables -t nat -A POSTROUTING -o $(ip route show default | awk '{print $5}') -j MASQUERADE",
     ["substitution"]),
    ("PostUp = iptables -t nat -A POSTROUTING -o `ip -o route get 1 | cut -d' ' -f5` -j MASQUERADE", ["substitution"]),
    ("PostUp = iptables -A FORWARD -i %i -o $WAN -j ACCEPT", ["variable"]),
    ("PostUp = wg set %i private-key /etc/wireguard/%i.key", ["wg-key"]),
    ("PostUp = /etc/wireguard/up.sh %i", ["script"]),
    ("PostUp = bash /root/nat.sh", ["script"]),
    ("PostUp = resolvectl dns %i 10.8.0.1; resolvectl domain %i ~.", ["dns", "dns"]),
    ("PostUp = nft add rule inet filter forward iifname %i accept", ["nft"]),
    ("PostUp = ufw route allow in on wg0 out on eth0", ["ufw"]),
    ("PostUp = iptables-restore < /etc/iptables/rules.v4", ["redirect"]),
    ("PostUp = ping -c1 10.8.0.2 | logger", ["pipe"]),
    ("PostUp = sleep 5 &", ["background"]),
    ("PostUp = iptables -N WGCHAIN; iptables -A FORWARD -j WGCHAIN; iptables -A WGCHAIN -i wg0 -j ACCEPT",
     ["custom-chain", "custom-chain", "custom-chain"]),
    ("PostUp = iptables -A FORWARD -m comment --comment 'wg-quick(8) rule' -j ACCEPT", ["lab-check"]),
    ("PostUp = iptables -F FORWARD", ["iptables-verb"]),
    ("PostUp = iptables -D FORWARD -i wg0 -j ACCEPT", ["iptables-verb"]),
    ("PostUp = iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE --modprobe=/tmp/x", ["lab-check"]),
    ("PostUp = sysctl -w kernel.panic=1", ["lab-check"]),
    ("PostUp = sysctl -p /etc/sysctl.d/99-wg.conf", ["sysctl-load"]),
    ("PostUp = ip route add 10.9.0.0/24 dev wg0 metric 5", ["ip-word"]),
    ("PostUp = ip rule add from 192.168.1.0/24 table 7", ["ip-word"]),
    ("PostUp = ip link set mtu 1380 dev %i", ["ip-link"]),
    ("PostUp = iptables -A FORWARD -j ACCEPT || echo failed", ["or-list"]),
    ("PostUp = iptables -A FORWARD -i 'wg0 -j ACCEPT", ["quotes"]),
    ("PostUp = touch /tmp/wgtrace-hook-ran", ["program"]),
])
def test_commands_not_reproduced_and_why(line, reasons, tmp_path):
    assert why(line) == reasons
    assert not (tmp_path / "wgtrace-hook-ran").exists()


def test_one_sentence_each_with_file_line_and_the_command():
    got = [s.text() for s in reading("PostUp = iptables -A FORWARD -i %i -j ACCEPT",
                                     "PostUp = firewall-cmd --add-rich-rule='rule family=ipv4 masquerade'").skipped]
    assert got == ["wg0.conf:4: PostUp `firewall-cmd '--add-rich-rule=rule family=ipv4 masquerade'`: not "
                   "reproduced: firewalld: a lab has iptables rules, not firewalld zones"]


def test_down_hooks_that_undo_are_counted_the_rest_listed():
    r = reading("PostDown = iptables -D FORWARD -i %i -j ACCEPT; iptables -t nat -D POSTROUTING -o eth0 -j MASQUERADE",
                "PreDown = ip route del 10.9.0.0/24 dev %i",
                "PostDown = firewall-cmd --zone=public --add-interface=wg0 && firewall-cmd --remove-port 5/udp")
    assert r.actions == [] and r.undo == [3, 3, 4, 5]
    assert [s.params["command"] for s in r.skipped] == ["firewall-cmd --zone=public --add-interface=wg0"]


def test_a_key_in_a_hook_is_never_shown():
    secret = "kAngsW17s9BNFYsUtLyPJjK6JMISeaAtPX2zJ1sKl24="
    r = reading(f"PostUp = wg set %i private-key <(echo {secret})")
    text = " ".join(s.text() for s in r.skipped)
    assert secret not in text and "(key)" in text
