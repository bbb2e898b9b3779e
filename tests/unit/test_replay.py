"""Every diagnosis recorded on a real lab (tests/fixtures/verdicts/<lab>/<fault>.json, written by
the integration tests with WGTRACE_RECORD=1), replayed through the verdict rules: the same facts
give the same verdict. No root, no kernel.

What is compared is the verdict's meaning (cause, stop, evidence keys and parameters, fixes),
never its words: the words are compared once, in the golden terminal views under
tests/golden/views (rewrite them with WGTRACE_UPDATE_GOLDEN=1 and review the diff). A fixture
keeps a digest of the lab file it was recorded on; a replay of a lab file changed since then
says so.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import re
import warnings
from pathlib import Path

import pytest

from wgtrace.diagnose.replay import lab_digest, load_context
from wgtrace.diagnose.rules import decide
from wgtrace.diagnose.run import Diagnosis
from wgtrace.model.faults import load_faults
from wgtrace.model.labfile import available_labs, find_lab, load_lab

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted((ROOT / "fixtures" / "verdicts").glob("*/*.json"))
GOLDEN = ROOT / "golden" / "views"
UPDATE = os.environ.get("WGTRACE_UPDATE_GOLDEN") == "1"
IDS = [f"{p.parent.name}:{p.stem}" for p in FIXTURES]
LABS = [n for n in available_labs() if find_lab(n).with_name(f"{n}.faults.toml").is_file()]
MARK6 = "fd6e"          # the IPv6 networks the dual-stack replays add: recognisable, in no lab


@functools.lru_cache(maxsize=None)
def _lab(path: str, rename: str | None, params: tuple):
    return load_lab(path, rename=rename, params=dict(params))


def _load_lab(path: str, rename: str | None = None, params: dict | None = None):
    """A lab file read once per name and parameters: a model is never changed by a diagnosis."""
    return _lab(path, rename, tuple(sorted((params or {}).items())))


def _load(path: Path, ipv6: bool = False):
    rec = json.loads(path.read_text())
    lab_file = str(find_lab(rec["lab"]))
    context = _with_ipv6(rec["context"]) if ipv6 else rec["context"]
    return rec, lab_file, load_context(context, lab_file, load_lab=_load_lab)


def _stale(rec: dict, lab_file: str) -> str:
    if rec.get("lab_sha256") == lab_digest(lab_file):
        return ""
    return (f"{lab_file} (or its fault catalogue) changed since this fixture was recorded: re-record it "
            f"as root with WGTRACE_RECORD=1 python3 -m pytest tests/integration/test_diagnose.py -k {rec['fault']}")


@pytest.mark.parametrize("lab", LABS)
def test_every_catalogued_fault_has_a_fixture(lab: str):
    faults = load_faults(str(find_lab(lab)), load_lab(lab).nodes)
    names = {f.name for f in faults}
    have = {p.stem for p in FIXTURES if p.parent.name == lab}
    assert names - have == set(), f"faults of {lab} never recorded: {sorted(names - have)}"
    assert have - names == set(), f"fixtures of {lab} for faults no longer catalogued: {sorted(have - names)}"


@pytest.mark.parametrize("path", FIXTURES, ids=IDS)
def test_recorded_diagnosis_replays_to_the_same_verdict(path: Path):
    rec, lab_file, ctx = _load(path)
    v = decide(ctx)
    stale = _stale(rec, lab_file)
    want = rec["expect"]
    assert (v.cause, v.stop.node, v.stop.phase) == (want["cause"], want["node"], want["phase"]), stale
    assert v.meaning() == rec["verdict"], stale
    if stale:
        warnings.warn(stale)


def _with_ipv6(context: dict) -> dict:
    """The same facts on a dual-stack network: an IPv6 network beside the IPv4 ones in every
    peer's allowed-ips (as every installer writes them), an IPv6 address on every link that has
    an IPv4 one, and an IPv6 route beside the IPv4 routes."""
    c = copy.deepcopy(context)
    for i, f in enumerate(c["facts"].values()):
        for w in f["wg"]:
            for j, p in enumerate(w["peers"]):
                p["allowed_ips"] = p["allowed_ips"] + [f"{MARK6}:{i}:{j}::/64"]
        for k, link in enumerate(f["links"].values()):
            if link["addresses"] and link["name"] != "lo":
                link["addresses"] = link["addresses"] + [f"{MARK6}:{i}:{k}::1/64"]
        f["routes"] = f["routes"] + [{"dst": f"{MARK6}:ffff::/48", "via": None, "dev": "lo", "proto": "static",
                                      "table": 254, "family": 6}]
    return c


def _strip6(v):
    """The verdict's meaning with the added IPv6 networks taken out of every text."""
    if isinstance(v, dict):
        return {k: _strip6(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_strip6(x) for x in v]
    if isinstance(v, str):
        v = re.sub(rf"(, )?,?{MARK6}:[0-9a-f:]*(/\d+)?", "", v)     # in lists "a,b" and "a, b"
        return v.replace(" ,", " ").replace("(, ", "(").lstrip(",")
    return v


@pytest.mark.parametrize("path", FIXTURES, ids=IDS)
def test_the_same_verdict_with_ipv6_beside_ipv4(path: Path):
    rec, _, ctx = _load(path, ipv6=True)
    v = decide(ctx)
    assert _strip6(v.meaning()) == _strip6(rec["verdict"])


@functools.lru_cache(maxsize=1)
def _replayed(path: Path):
    """One replay per fixture for the views of both languages, whose tests come one after the
    other (a view reads the verdict, never changes it)."""
    _, _, ctx = _load(path)
    return ctx, decide(ctx)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("path", FIXTURES, ids=IDS)
def test_terminal_view_is_the_golden_one(path: Path, lang: str):
    from rich.console import Console
    from wgtrace.output.verdict_view import verdict_view
    ctx, verdict = _replayed(path)
    d = Diagnosis(ctx.res, verdict, lang, context=ctx)
    with open(os.devnull, "w") as null:
        console = Console(record=True, width=120, color_system=None, force_terminal=False, file=null)
        console.print(verdict_view(d, lang), highlight=False, soft_wrap=True)
    got = console.export_text()
    golden = GOLDEN / path.parent.name / f"{path.stem}.{lang}.txt"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got)
    assert golden.is_file(), f"no golden view yet: write it with WGTRACE_UPDATE_GOLDEN=1 ({golden})"
    assert got == golden.read_text(), f"the view of {path.stem} ({lang}) changed: review, then WGTRACE_UPDATE_GOLDEN=1"


def test_replays_need_no_root(tmp_path):
    """The replay runs as user 65534 with no capability but reading files (Python may live in
    root's home, which only root may open): no namespace, socket or privilege is needed."""
    import shutil
    import subprocess
    import sys
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("switching users needs root and setpriv; as any other user this file already runs unprivileged")
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search",
                        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__)),
                        "-k", "replays_to_the_same_verdict"],         # every fixture once: what needs no root
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1",
                            "PYTHONPATH": str(repo)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert " passed" in r.stdout
