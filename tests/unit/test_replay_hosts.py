"""Diagnoses recorded on networks built by plain commands, over SSH (tests/fixtures/hosts/, written by
tests/integration/test_plain_hosts.py with WGTRACE_RECORD=1), replayed through the verdict rules:
the gap between hosts, a missing NAT toward the internet, roaming and silent peers, a tunnel routed
into itself. The model is the one discovered from the hosts (kept in the fixture). No root."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wgtrace.diagnose.replay import load_context
from wgtrace.diagnose.rules import decide

FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "hosts").glob("*.json"))


def test_the_cases_are_recorded():
    assert {p.stem for p in FIXTURES} >= {"router-drops-wireguard-port", "nat-router-masquerade-gone",
                                          "internet-nat-missing-peers", "internet-destination-silent",
                                          "roaming-nat-address-changed", "silent-peer-without-endpoint",
                                          "full-tunnel-fwmark-lost"}


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_recorded_hosts_diagnosis_replays(path: Path):
    rec = json.loads(path.read_text())
    ctx = load_context(rec["context"])
    assert decide(ctx).meaning() == rec["verdict"]
