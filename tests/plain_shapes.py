"""The networks of the ``--hosts`` tests, typed as plain commands on a ``PlainNet`` (tests/plain_net.py).

- ``seed``: the seed document's network (as bench/plain_seed.sh builds it): home behind a NAT
  router, a relay bcc, company behind another NAT router with target on its LAN.
- ``installer``: a VPN server as a popular installer leaves one (wg0 with an IPv4 /24 and an IPv6
  ULA, PostUp lines accepting wg0 in FORWARD and masquerading out of eth0 in both families), a
  laptop ``alice`` behind a home NAT router with a full tunnel brought up by the real wg-quick
  (``AllowedIPs = 0.0.0.0/0, ::/0``: fwmark, table 51820, its nft table), the internet as a
  router and a web server ``web`` on it (198.18.0.80) that is nobody's host.
- ``hub``: a relay with N spokes on one public bridge, each spoke a WireGuard peer of the relay
  only; spokes reach each other through the relay.

Each returns the list of machines that get an sshd and a management cable (all but the switch).
"""
from __future__ import annotations

from plain_net import PlainNet

SEED_HOSTS = ["internet", "bcc", "home-router", "home", "company-router", "company", "target"]
SEED_PEERS = ["bcc", "home", "company", "target"]       # the WireGuard peers, and the target


def seed(net: PlainNet, keepalive: int | None = 15) -> list[str]:
    net.machine(*SEED_HOSTS)
    net.bridge("company-router", "lan")
    net.cable("internet", "eth-bcc", "bcc", "eth0")
    net.cable("internet", "eth-home", "home-router", "wan")
    net.cable("internet", "eth-company", "company-router", "wan")
    net.cable("home-router", "lan", "home", "wlp2s0")
    net.cable("company-router", "lan-company", "company", "ens192", bridge_a="lan")
    net.cable("company-router", "lan-target", "target", "ens192", bridge_a="lan")
    for node, iface, cidr in (("internet", "eth-bcc", "203.0.113.1/24"), ("internet", "eth-home", "198.51.100.1/24"),
                              ("internet", "eth-company", "192.0.2.1/24"), ("bcc", "eth0", "203.0.113.13/24"),
                              ("home-router", "wan", "198.51.100.14/24"), ("home-router", "lan", "192.168.0.1/24"),
                              ("home", "wlp2s0", "192.168.0.9/24"), ("company-router", "wan", "192.0.2.117/24"),
                              ("company-router", "lan", "10.10.13.1/24"), ("company", "ens192", "10.10.13.62/24"),
                              ("target", "ens192", "10.10.13.61/24")):
        net.addr(node, iface, cidr)
    net.sysctl("internet", "net.ipv4.ip_forward=1")
    for node, gw in (("bcc", "203.0.113.1"), ("home-router", "198.51.100.1"), ("home", "192.168.0.1"),
                     ("company-router", "192.0.2.1"), ("company", "10.10.13.1"), ("target", "10.10.13.1")):
        net.ip(node, "route", "add", "default", "via", gw)
    for router in ("home-router", "company-router"):
        net.sysctl(router, "net.ipv4.ip_forward=1")
        net.iptables(router, "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE", "--random-fully")
    net.iptables("bcc", "-P", "FORWARD", "DROP")
    net.iptables("company", "-P", "FORWARD", "DROP")
    net.wireguard("bcc", "wg0", ["192.168.2.1/24"], 38371)
    net.wireguard("home", "wg0", ["192.168.2.2/24"], 52796)
    net.wireguard("company", "wg0", ["192.168.2.3/24"], 49830)
    net.peer("bcc", "wg0", "home", ["192.168.2.2/32"], keepalive=keepalive)
    net.peer("bcc", "wg0", "company", ["192.168.2.3/32", "10.10.13.0/24"], keepalive=keepalive)
    net.peer("home", "wg0", "bcc", ["192.168.2.0/24", "10.10.13.0/24"], "203.0.113.13:38371", keepalive)
    net.peer("company", "wg0", "bcc", ["192.168.2.0/24"], "203.0.113.13:38371", keepalive)
    net.ip("home", "route", "add", "10.10.13.0/24", "via", "192.168.2.1", "dev", "wg0")
    net.sysctl("bcc", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
               "net.ipv4.conf.wg0.send_redirects=0")
    net.iptables("bcc", "-A", "FORWARD", "-i", "wg0", "-j", "ACCEPT")
    net.iptables("bcc", "-A", "FORWARD", "-o", "wg0", "-j", "ACCEPT")
    net.ip("bcc", "route", "add", "10.10.13.0/24", "via", "192.168.2.1", "dev", "wg0")
    net.sysctl("company", "net.ipv4.ip_forward=1")
    net.iptables("company", "-A", "FORWARD", "-i", "wg0", "-o", "ens192", "-j", "ACCEPT")
    net.iptables("company", "-t", "nat", "-A", "POSTROUTING", "-s", "192.168.2.0/24", "-o", "ens192", "-j", "MASQUERADE")
    net.iptables("company", "-A", "FORWARD", "-i", "ens192", "-o", "wg0", "-j", "ACCEPT")
    net.handshakes("bcc", 2)
    net.ping("home", "10.10.13.61")
    return list(SEED_HOSTS)


VPS_CONF = """[Interface]
Address = 10.66.66.1/24, fd42:42:42::1/64
ListenPort = 51820
PrivateKey = @PRIVATE@
PostUp = iptables -I FORWARD -i eth0 -o wg0 -j ACCEPT; iptables -I FORWARD -i wg0 -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE; ip6tables -I FORWARD -i wg0 -j ACCEPT; ip6tables -t nat -A POSTROUTING -o eth0 -j MASQUERADE
PostDown = iptables -D FORWARD -i eth0 -o wg0 -j ACCEPT; iptables -D FORWARD -i wg0 -j ACCEPT; iptables -t nat -D POSTROUTING -o eth0 -j MASQUERADE; ip6tables -D FORWARD -i wg0 -j ACCEPT; ip6tables -t nat -D POSTROUTING -o eth0 -j MASQUERADE

[Peer]
PublicKey = @ALICE@
AllowedIPs = 10.66.66.2/32, fd42:42:42::2/128
"""

ALICE_CONF = """[Interface]
PrivateKey = @PRIVATE@
Address = 10.66.66.2/32, fd42:42:42::2/128

[Peer]
PublicKey = @VPS@
Endpoint = 203.0.113.10:51820
AllowedIPs = 0.0.0.0/0, ::/0
"""

INSTALLER_HOSTS = ["alice", "home-router", "internet", "vps"]
WEB = "198.18.0.80"


def installer(net: PlainNet, keepalive: int | None = None) -> list[str]:
    """alice -> home-router (NAT) -> internet -> vps; web on the internet, nobody's host."""
    net.machine("alice", "home-router", "internet", "vps", "web")
    net.cable("home-router", "lan", "alice", "wlan0")
    net.cable("internet", "eth-home", "home-router", "wan")
    net.cable("internet", "eth-vps", "vps", "eth0")
    net.cable("internet", "eth-web", "web", "eth0")
    for node, iface, cidrs in (("alice", "wlan0", ["192.168.1.20/24"]), ("home-router", "lan", ["192.168.1.1/24"]),
                               ("home-router", "wan", ["198.51.100.20/24"]),
                               ("internet", "eth-home", ["198.51.100.1/24"]),
                               ("internet", "eth-vps", ["203.0.113.1/24", "2001:db8:10::1/64"]),
                               ("internet", "eth-web", ["198.18.0.1/24"]),
                               ("vps", "eth0", ["203.0.113.10/24", "2001:db8:10::10/64"]),
                               ("web", "eth0", [f"{WEB}/24"])):
        net.addr(node, iface, *cidrs)
    net.sysctl("internet", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
    net.sysctl("home-router", "net.ipv4.ip_forward=1")
    net.iptables("home-router", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE")
    for node, gw in (("alice", "192.168.1.1"), ("home-router", "198.51.100.1"), ("vps", "203.0.113.1"),
                     ("web", "198.18.0.1")):
        net.ip(node, "route", "add", "default", "via", gw)
    net.ip("vps", "-6", "route", "add", "default", "via", "2001:db8:10::1")
    net.sysctl("vps", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
    net.wg_quick("vps", "wg0", VPS_CONF.replace("@ALICE@", net.key("alice")))
    conf = ALICE_CONF.replace("@VPS@", net.key("vps"))
    if keepalive:
        conf += f"PersistentKeepalive = {keepalive}\n"
    net.wg_quick("alice", "wg0", conf)
    net.ping("alice", "10.66.66.1")
    net.handshakes("vps", 1)
    net.ping("alice", WEB)
    return list(INSTALLER_HOSTS)


def hub(net: PlainNet, spokes: int) -> list[str]:
    """relay and spoke1..N on one public bridge (a switch that is nobody's host); 10.99.0.0/16 inside."""
    names = ["relay"] + [f"spoke{i}" for i in range(1, spokes + 1)]
    net.machine("switch", *names)
    net.bridge("switch", "pub")
    net.cable("switch", "p-relay", "relay", "eth0", bridge_a="pub")
    net.addr("relay", "eth0", "100.64.0.1/16")
    net.wireguard("relay", "wg0", ["10.99.0.1/16"], 51820)
    net.sysctl("relay", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0")
    for i in range(1, spokes + 1):
        s = f"spoke{i}"
        net.cable("switch", f"p-{s}"[:15], s, "eth0", bridge_a="pub")
        net.addr(s, "eth0", f"100.64.1.{i}/16")
        net.wireguard(s, "wg0", [f"10.99.1.{i}/16"], 51820)
        net.peer(s, "wg0", "relay", ["10.99.0.0/16"], "100.64.0.1:51820", 25)
        net.peer("relay", "wg0", s, [f"10.99.1.{i}/32"])
    net.sysctl("relay", "net.ipv4.conf.wg0.send_redirects=0")
    net.handshakes("relay", spokes, limit=30)
    net.ping("spoke1", f"10.99.1.{spokes}")
    return names
