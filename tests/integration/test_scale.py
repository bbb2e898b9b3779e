"""A hub with 20 spokes (42 nodes): built, traced across in both families, diagnosed; only the path
is watched."""
from __future__ import annotations

from wgtrace.diagnose.run import diagnose
from wgtrace.opener import open_network
from wgtrace.trace.run import run_trace


def test_twenty_spoke_hub_traced_across_watching_only_the_path(lab_factory, leftovers):
    lab = lab_factory.up(lab_file="hub", params={"spokes": "20"})
    assert len(lab.model.nodes) == 42
    with open_network(lab=lab.name) as net:
        res = run_trace(net, "h1", "h20", keep_raw=True)
    assert res.reachable, res.story_text()
    watched = set(res.observation.ifaces)
    assert {"h1", "spoke1", "relay", "spoke20", "h20"} <= watched
    assert len(watched) <= 8, watched           # the path, not the 42 nodes
    assert res.inner_path("request").startswith("h1.eth0 -> spoke1.lan -> spoke1.wg0 -> relay.wg0")
    with open_network(lab=lab.name) as net:
        six = run_trace(net, "h1", "h20", keep_raw=True, family=6)        # the same path over IPv6
    assert six.reachable and six.probe["dst_ip"] == "fd64:20::10", six.story_text()
    assert len(six.observation.ifaces) <= 8 and six.inner_path("request") == res.inner_path("request")
    assert lab.node("relay").run(["sysctl", "-qw", "net.ipv4.ip_forward=0"]).returncode == 0
    with open_network(lab=lab.name) as net:
        d = diagnose(net, "h1", "h20")
    assert (d.verdict.cause, d.verdict.stop.node) == ("forwarding-disabled", "relay")
    assert [f.command for f in d.verdict.fix] == ["sysctl -w net.ipv4.ip_forward=1"]
