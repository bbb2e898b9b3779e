#!/usr/bin/env python3
"""Make docs/serve.png and docs/report.png on real labs, in headless Debian Chromium.

Labs (named shotK, removed at the end): a guided lesson four stages in (its HTML report becomes
report.png), an exercise with two faults and one failed check, a seed lab broken with
company-return-rule-missing (diagnosed from the page: the picture shows its path and stop), and a
site-to-site lab with its check --all matrix. Progress records go to a temporary
WGTRACE_STATE_DIR, so nobody's own records are touched.
Run as root:  python3 docs/screenshots.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]
WGT = [sys.executable, "-m", "wgtrace"]
LESSON, EXERCISE, BROKEN, SITES = "shot1", "shot2", "shot3", "shot4"


def run(*args: str, stdin: str | None = None, ok=(0,)) -> str:
    r = subprocess.run(WGT + list(args), cwd=REPO, capture_output=True, text=True, input=stdin, timeout=300)
    if r.returncode not in ok:
        raise SystemExit(f"wgtrace {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def main() -> int:
    import browser_support as B
    os.environ["WGTRACE_STATE_DIR"] = tempfile.mkdtemp(prefix="wgtrace-shots-")
    report = os.path.join(os.environ["WGTRACE_STATE_DIR"], "report.html")
    serve = browser = None
    try:
        run("lesson", "seed", "--name", LESSON, stdin="skip\n" * 4 + "hint\nquit\n")
        run("report", "--lesson", "seed", "--lab", LESSON, "--html", report)
        run("exercise", "--name", EXERCISE, "--seed", "7", "--faults", "2")
        run("check", "--lab", EXERCISE, ok=(1,))
        run("lab", "up", "--name", BROKEN)
        run("break", "company-return-rule-missing", "--lab", BROKEN)
        run("lab", "up", "site2site", "--name", SITES)
        run("check", "--all", "--lab", SITES)
        serve = B.ServeProcess("--allow-probes")
        browser = B.Browser(1400, 1250)
        b = browser
        b.driver.get(serve.url)
        b.js("const f = document.getElementById('filter'); f.value = 'shot'; f.dispatchEvent(new Event('input'))")
        card = f'document.querySelector(\'section.lab[data-lab="{BROKEN}"]\')'
        b.wait(f"return {card}")
        b.js(f"{card}.querySelector('button.diagnose').click()")
        b.wait(f"return {card}.querySelector('.verdict.stopped')", timeout=60)
        time.sleep(0.5)
        b.driver.save_screenshot(os.path.join(REPO, "docs", "serve.png"))
        b.driver.set_window_size(1100, 1000)
        b.driver.get("file://" + report)
        time.sleep(0.5)
        b.driver.save_screenshot(os.path.join(REPO, "docs", "report.png"))
        print("wrote docs/serve.png and docs/report.png")
    finally:
        if browser is not None:
            browser.quit()
        if serve is not None:
            serve.stop()
        for lab in (LESSON, EXERCISE, BROKEN, SITES):
            if os.path.exists(f"/run/wgtrace/{lab}"):
                run("lab", "down", lab)
        shutil.rmtree(os.environ["WGTRACE_STATE_DIR"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
