"""The node seam, proved with a third backend: nodes that serve recorded state (nodes/recorded.py)
go through the same code as lab namespaces and SSH hosts — facts, status, path prediction, the
probe's set-up, a whole diagnosis — with no root and no kernel, and nothing above nodes/ asks
which kind of node it holds."""
from __future__ import annotations

import json
from pathlib import Path

from wgtrace.diagnose import facts as factsmod
from wgtrace.diagnose.replay import load_context
from wgtrace.lab.status import network_status
from wgtrace.model.labfile import find_lab
from wgtrace.network import Network
from wgtrace.nodes.recorded import from_facts
from wgtrace.trace.run import prepare
from wgtrace.trace.scope import predict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "verdicts"


def _network(lab: str, fault: str) -> tuple[Network, object]:
    rec = json.loads((FIXTURES / lab / f"{fault}.json").read_text())
    ctx = load_context(rec["context"], str(find_lab(lab)))
    nodes = {n: from_facts(f, ctx.routes) for n, f in ctx.facts.items()}
    return Network(lab, ctx.lab, nodes, dict(ctx.keys), ctx.stage), ctx


def test_facts_read_from_recorded_nodes_are_the_recorded_facts():
    net, ctx = _network("seed", "company-return-rule-missing")
    got = factsmod.snapshot(list(net.nodes.values()))
    for name, f in ctx.facts.items():
        assert got[name].links == f.links and got[name].routes == f.routes
        assert [w.name for w in got[name].wg] == [w.name for w in f.wg]
        assert got[name].sysctl.get("net.ipv4.ip_forward") == f.sysctl.get("net.ipv4.ip_forward")


def test_status_and_the_probe_set_up_work_on_recorded_nodes():
    net, ctx = _network("seed", "bcc-forwarding-off")
    st = network_status(net)
    assert {n.name for n in st.nodes} == set(ctx.facts)
    assert any(i.name == "wg0" for n in st.nodes for i in n.ifaces)
    p = prepare(net, "home", "target")
    assert p.dst == "10.10.13.61" and p.src_node == "home"


def test_the_path_is_predicted_from_recorded_routes_and_peers(monkeypatch):
    from wgtrace.trace import scope
    net, _ = _network("hub", "relay-route-first-spoke-only")
    monkeypatch.setattr(scope, "SMALL", 2)       # predict even this small a lab, not watch it whole
    seen = predict(net, "h1", "10.100.2.10", "10.100.1.10")
    assert {"h1", "spoke1", "relay"} <= seen and len(seen) < len(net.nodes)
