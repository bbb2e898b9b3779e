"""diagnose against real labs: every fault of every lab's catalogue, stacked faults, healthy labs.

For each fault: inject it into the lab as built, diagnose from the fault's probe, compare cause, stop
node and direction with the catalogue, apply the suggested fix as documented (`lab exec NODE --
sh -c COMMAND`), and require every pair of the lab's checks to work again: a fix that repairs
one pair and breaks another is a wrong fix. With WGTRACE_RECORD=1 each diagnosis is saved, with
everything decide() was given, as tests/fixtures/verdicts/<lab>/<fault>.json (replayed by
tests/unit/test_replay.py without root). The faults of one lab file share a running lab while each
fix leaves it as it was built (tests/lab_reuse.py compares fingerprints of its state); otherwise
the next fault gets a fresh one.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from wgtrace.diagnose.replay import record
from wgtrace.diagnose.run import diagnose
from wgtrace.diagnose.verdict import CAUSES
from wgtrace.lab.inject import inject
from wgtrace.opener import open_network
from wgtrace.model.faults import find_fault, load_faults
from wgtrace.model.labfile import available_labs, find_lab, load_lab
from wgtrace.teach.exercise import default_probe

from conftest import LabFactory, _need_lab
from lab_reuse import SharedLabs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "verdicts"
LABS = [n for n in available_labs() if find_lab(n).with_name(f"{n}.faults.toml").is_file()]
CASES = [(lab, f) for lab in LABS for f in load_faults(str(find_lab(lab)), load_lab(lab).nodes)]
SEED = load_faults(str(find_lab("seed")))


def run_diagnose(src, dst, lab, only=None, **kw):
    with open_network(lab=lab, only=only) as net:
        return diagnose(net, src, dst, **kw)


def test_catalogues_cover_every_cause():
    causes = {f.cause for _, f in CASES}
    assert causes == set(CAUSES) - {"reachable", "inconsistent"}
    assert {f.cause for f in SEED} == set(CAUSES) - {"reachable", "inconsistent"}


def _probe_args(model, fault) -> tuple[str, str, dict]:
    src, dst, _ = default_probe(model)
    p = dict(fault.probe)
    src, dst = p.pop("src", src), p.pop("dst", dst)
    return src, dst, p


def _checks_pass(cli, lab: str) -> tuple[bool, str]:
    for _ in range(3):                 # a repaired tunnel may need its handshake first
        r = cli("check", "--all", "--lab", lab)
        if r.returncode == 0:
            return True, r.stdout
        time.sleep(1.0)
    return False, r.stdout + r.stderr


@pytest.fixture(scope="module")
def shared_labs():
    _need_lab()
    factory = LabFactory()
    pool = SharedLabs(factory)
    try:
        yield pool
    finally:
        try:
            pool.close()
        finally:
            factory.close()
        print(f"\nshared labs: {pool.built} built, {pool.reused} reused; rebuilt after "
              + ("; ".join(pool.rebuilt_because) or "nothing"))


@pytest.mark.parametrize("lab_name, fault", CASES, ids=[f"{lab}:{f.name}" for lab, f in CASES])
def test_fault_is_diagnosed_and_its_fix_is_right_and_safe(shared_labs, cli, lab_name, fault):
    lab = shared_labs.get(lab_name, fault)
    passed = False
    try:
        _fault_round(cli, lab, lab_name, fault)
        passed = True
    finally:
        shared_labs.done(lab_name, fault, passed)


def _fault_round(cli, lab, lab_name, fault) -> None:
    src, dst, opts = _probe_args(lab.model, fault)
    inject(fault, lab.state)
    d = run_diagnose(src, dst, lab.name, **opts)
    if os.environ.get("WGTRACE_RECORD") == "1":
        out = FIXTURES / lab_name / f"{fault.name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record(d.context, d.verdict, fault, lab_name, str(find_lab(lab_name))),
                                  indent=1, ensure_ascii=False) + "\n")
    v = d.verdict
    assert v.cause == fault.cause, [e.to_json() for e in v.evidence]
    assert (v.stop.node, v.stop.phase) == (fault.node, fault.direction), v.stop
    assert d.explanation and v.evidence
    if fault.cause == "lost-between":      # inside a box out of view: what to check there, and no fix
        assert not v.fix and any(e.kind == "state" and e.key.startswith("check-") for e in v.evidence)
        return
    assert v.fix, "a known fault must come with a fix"
    for f in v.fix:     # as documented: each fix command runs with lab exec NODE -- sh -c COMMAND
        x = cli("lab", "exec", "--lab", lab.name, f.node, "--", "sh", "-c", f.command)
        assert x.returncode == 0, (f.command, x.stderr)
    again = run_diagnose(src, dst, lab.name, **opts)
    if not again.reachable:        # a new WireGuard session may take one more moment
        time.sleep(1.0)
        again = run_diagnose(src, dst, lab.name, **opts)
    assert again.reachable, (again.verdict.cause, [e.to_json() for e in again.verdict.evidence])
    ok, out = _checks_pass(cli, lab.name)
    assert ok, out


@pytest.mark.parametrize("lab_name", LABS)
def test_healthy_lab_passes_all_its_checks(lab_factory, cli, lab_name):
    lab = lab_factory.up(lab_file=lab_name)
    r = cli("check", "--all", "--lab", lab.name, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["passed"] is True and all(c["reachable"] for c in d["checks"])


def test_healthy_seed_diagnosis_json(seed_lab, cli):
    r = cli("diagnose", "home", "target", "--lab", seed_lab.name, "--json")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["cause"] == "reachable" and d["stop"] is None and d["reachable"] is True
    assert set(d) >= {"src", "dst", "dst_ip", "probe", "reachable", "cause", "stop", "explanation",
                      "evidence", "fix", "hops"}
    r = cli("diagnose", "home", "target", "--lab", seed_lab.name, "--tcp", "22", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["cause"] == "reachable"


def test_stacked_faults_first_stop_then_fix_clears_both(lab_factory, cli):
    lab = lab_factory.up()
    inject(find_fault(SEED, "company-return-rule-missing"), lab.state)
    inject(find_fault(SEED, "bcc-forwarding-off"), lab.state)
    d = run_diagnose("home", "target", lab.name)
    assert (d.verdict.cause, d.verdict.stop.node) == ("forwarding-disabled", "bcc")   # the first stop
    r = cli("diagnose", "home", "target", "--lab", lab.name, "--fix", "--json")
    assert r.returncode == 0, r.stdout
    steps = json.loads(r.stdout)["steps"]
    assert [s["cause"] for s in steps] == ["forwarding-disabled", "forward-filtered", "reachable"]


def test_chinese_explanation_and_json(lab_factory, cli):
    lab = lab_factory.up("bcc-forwarding")
    d = run_diagnose("home", "target", lab.name, lang="zh")
    assert d.verdict.cause == "forward-filtered" and "FORWARD" in d.explanation and "转发" in d.explanation
    r = cli("diagnose", "home", "target", "--lab", lab.name, "--lang", "zh", "--json")
    j = json.loads(r.stdout)
    assert "被看到进入" in j["story"] and any("命中" in e["detail"] for e in j["evidence"])


DUAL = ("company-return-rule-missing", "bcc-forwarding-off", "home-route-missing", "home-allowed-ips")


def _add_ipv6_allowed_ips(lab) -> None:
    """Every peer of every node also carries an IPv6 network, as installers write them: the
    IPv4 networks stay, one fd00:N::M/128 goes beside them."""
    for i, name in enumerate(lab.model.nodes):
        node = lab.node(name)
        for w in node.wg():
            for j, p in enumerate(w.peers):
                ips = ",".join(p.allowed_ips + [f"fd00:{i + 1}::{j + 1}/128"])
                r = node.run(["wg", "set", w.name, "peer", p.public_key, "allowed-ips", ips])
                assert r.returncode == 0, r.stderr


def test_ipv6_allowed_ips_beside_ipv4_change_no_verdict(lab_factory):
    """The live crash of issue 15: a peer with fd…/128 beside its IPv4 networks. Healthy is still
    reachable; each fault gets the verdict it gets without them."""
    lab = lab_factory.up(lab_file="seed")
    _add_ipv6_allowed_ips(lab)
    src, dst, _ = default_probe(lab.model)
    assert run_diagnose(src, dst, lab.name).reachable
    by_name = {f.name: f for f in SEED}
    for name in DUAL:
        fault = by_name[name]
        one = lab_factory.up(lab_file="seed")
        _add_ipv6_allowed_ips(one)
        inject(fault, one.state)
        v = run_diagnose(src, dst, one.name).verdict
        assert (v.cause, v.stop.node, v.stop.phase) == (fault.cause, fault.node, fault.direction), \
            (name, [e.to_json() for e in v.evidence])
        assert v.fix, name


def test_a_block_on_the_relays_output_under_a_peer_declared_again(lab_factory):
    """Two faults of an exercise one after the other: the relay's OUTPUT drops what it sends to
    spoke2, and its peer for spoke2 is declared again (as the fix of a wrong key does), so no
    session is left. Nothing but a handshake has to leave the relay, and WireGuard sends one at
    most every 5 s: a diagnosis right after another sees no counter move. Both still find the
    rule, from the ruleset, and the fix removes it."""
    lab = lab_factory.up(lab_file="hub")
    faults = load_faults(str(find_lab("hub")))
    inject(find_fault(faults, "relay-output-drops-spoke2"), lab.state)
    relay = lab.node("relay")
    key = lab.state.keys["spoke2"]
    [entry] = [p for w in relay.wg() for p in w.peers if p.public_key == key]
    assert relay.run(["wg", "set", "wg0", "peer", key, "remove"]).returncode == 0
    assert relay.run(["wg", "set", "wg0", "peer", key, "allowed-ips", ",".join(entry.allowed_ips)]).returncode == 0
    # spoke2 starts afresh too (the fix of the wrong key does so): its handshakes reach the
    # relay, which learns where spoke2 is; the answers are what the rule keeps in
    spoke2 = lab.node("spoke2")
    [back] = [p for w in spoke2.wg() for p in w.peers if p.public_key == lab.state.keys["relay"]]
    assert spoke2.run(["wg", "set", "wg0", "peer", back.public_key, "remove"]).returncode == 0
    assert spoke2.run(["wg", "set", "wg0", "peer", back.public_key, "allowed-ips", ",".join(back.allowed_ips),
                       "endpoint", back.endpoint, "persistent-keepalive", "25"]).returncode == 0
    for _ in range(100):
        if any(p.endpoint for w in relay.wg() for p in w.peers if p.public_key == key):
            break
        time.sleep(0.05)
    else:
        pytest.fail("spoke2's handshake never reached the relay")
    for _ in range(2):
        v = run_diagnose("h1", "h2", lab.name, family=4).verdict
        assert (v.cause, v.stop.node, v.stop.phase) == ("output-filtered", "relay", "request"), \
            [e.to_json() for e in v.evidence]
        assert [(f.node, f.argv) for f in v.fix] == [
            ("relay", ("iptables", "-t", "filter", "-D", "OUTPUT", "-d", "100.64.1.2/32", "-j", "DROP"))]
