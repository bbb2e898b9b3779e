"""Every diagnosis recorded on a real lab (tests/fixtures/verdicts/<lab>/<fault>.json, written by
the integration tests with WGTRACE_RECORD=1), replayed through the verdict rules: the same facts
give the catalogue's cause, stop and direction, and the same fix. No root, no kernel."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wgtrace.diagnose.replay import load_context
from wgtrace.diagnose.rules import decide
from wgtrace.model.labfile import find_lab

FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "verdicts").glob("*/*.json"))


def test_there_are_fixtures_for_every_lab_with_faults():
    assert FIXTURES, "record them: WGTRACE_RECORD=1 python3 -m pytest tests/integration/test_diagnose.py"
    assert {p.parent.name for p in FIXTURES} >= {"seed"}


@pytest.mark.parametrize("path", FIXTURES, ids=[f"{p.parent.name}:{p.stem}" for p in FIXTURES])
def test_recorded_diagnosis_replays_to_the_same_verdict(path: Path):
    rec = json.loads(path.read_text())
    ctx = load_context(rec["context"], str(find_lab(rec["lab"])))
    v = decide(ctx)
    want = rec["expect"]
    assert (v.cause, v.stop.node, v.stop.phase) == (want["cause"], want["node"], want["direction"])
    assert [f.to_json() for f in v.fix] == rec["verdict"]["fix"]
    assert [e.to_json() for e in v.evidence] == rec["verdict"]["evidence"]


def test_replays_need_no_root(tmp_path):
    """The replay runs as user 65534 with no capability but reading files (Python may live in
    root's home, which only root may open): no namespace, socket or privilege is needed."""
    import os
    import shutil
    import subprocess
    import sys
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("switching users needs root and setpriv; as any other user this file already runs unprivileged")
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search",
                        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__)),
                        "-k", "not need_no_root"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1",
                            "PYTHONPATH": str(repo)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert " passed" in r.stdout
