"""``wgtrace lab import`` as typed: the lab file on stdout (the golden file of the installer) or
written with -o, every note and finding one line on stderr, bad files one sentence each with exit
6 and never a traceback, and the lab file named after -o."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "wgquick"


def lab_import(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "wgtrace", "lab", "import", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_an_installers_files_give_its_golden_lab_file_on_stdout():
    r = lab_import("server=wg0.conf", "wg0-client-alice.conf", "wg0-client-bob.conf", "--name", "angristan",
                   cwd=DATA / "angristan")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (DATA / "angristan" / "expected.toml").read_text()
    lines = r.stderr.splitlines()
    assert any(l.startswith("wg0-client-alice.conf:4: DNS = 1.1.1.1, 1.0.0.1: shown") for l in lines)
    assert all(l.strip() for l in lines) and "Traceback" not in r.stderr


def test_written_with_o_named_after_the_file(tmp_path):
    out = tmp_path / "home-vpn.toml"
    r = lab_import("server=wg0.conf", "configs/laptop.conf", "configs/phone.conf", "-o", str(out),
                   cwd=DATA / "pivpn")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    data = tomllib.loads(out.read_text())
    assert data["name"] == "homevpn"
    assert {w.get("wg_quick") for n in data["nodes"].values() for w in n.get("wireguard", {}).values()} == {True}
    assert r.stderr.splitlines()[-1].startswith(f"wrote {out}: 7 nodes from 3 file(s), 1 finding(s)")


def test_bad_files_one_sentence_each_exit_6():
    bad = sorted(p.name for p in (DATA / "bad").glob("*.conf"))
    r = lab_import(*bad, cwd=DATA / "bad")
    assert r.returncode == 6, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    first, *details = r.stderr.splitlines()
    want = [l for b in bad for l in (DATA / "bad" / b.replace(".conf", ".expected")).read_text().splitlines()[1:]]
    assert first == f"wgtrace: {len(want)} problem(s) in the wg-quick files; nothing was built"
    assert [d.strip() for d in details] == want


@pytest.mark.parametrize("args, says", [
    (["missing.conf"], "missing.conf: cannot read it"),
    (["server=wg0.conf", "--name", "Bad-Name"], "--name 'Bad-Name': a lab name is"),
])
def test_what_cannot_be_read_is_one_sentence(args, says):
    r = lab_import(*args, cwd=DATA / "angristan")
    assert r.returncode == 6 and says in r.stderr and "Traceback" not in r.stderr
