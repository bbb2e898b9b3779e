"""A node's own firewall keeping WireGuard's datagram in, judged from the rules alone when nothing
had to leave during the probe (no session, and WireGuard sends a handshake at most once in 5 s):
an explicit rule that matches the endpoint is the answer, a policy never is."""
from __future__ import annotations

from wgtrace.diagnose.firewall import Firewall, Packet, iptables

SAVE = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [40:4000]
[5:600] -A OUTPUT -d 100.64.1.2/32 -j DROP
COMMIT
"""

KILL_SWITCH = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT DROP [3:300]
[0:0] -A OUTPUT -o wg0 -j ACCEPT
[0:0] -A OUTPUT -m mark --mark 0xca6c -j ACCEPT
COMMIT
"""


def datagram(dst: str) -> Packet:
    return Packet(4, iif="", proto="udp", dport=51820, dst=dst, src=None)


def test_a_rule_that_drops_the_endpoint_is_found_without_its_counter_moving():
    rules = iptables.parse(SAVE, 4)
    fw = Firewall(rules, [])                    # nothing moved during the probe
    [(rule, n)] = fw.ruled("output", datagram("100.64.1.2"))
    assert (rule.text, n) == ("-A OUTPUT -d 100.64.1.2/32 -j DROP", 0)
    assert fw.judged("output", datagram("100.64.1.2")) == []      # a counted rule: judged() waits for it
    assert fw.ruled("output", datagram("100.64.1.3")) == []


def test_a_policy_behind_rules_that_ask_what_is_not_known_is_no_answer():
    """A kill switch: OUTPUT DROP, with ACCEPT for the tunnel and for WireGuard's marked datagrams.
    The datagram's mark and interface are not known here, so the policy proves nothing."""
    fw = Firewall(iptables.parse(KILL_SWITCH, 4), [])
    assert fw.ruled("output", datagram("203.0.113.10")) == []
