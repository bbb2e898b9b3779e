"""Helpers for tests and benchmarks of ``wgtrace serve``: the server as a user starts it, and a
headless Debian Chromium driven by Selenium through Debian's chromium-driver.

The browser is the machine's own (/usr/bin/chromium, installed by setup.sh), never one a test
tool downloads (SE_OFFLINE, and both paths given, keep Selenium from looking for one); it runs
with a fresh profile and every background fetch off, and only ever loads pages of a server on
127.0.0.1 that the test started.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--window-size=1400,1000"]


def browser_blocker() -> str | None:
    """Why a browser test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (Debian packages chromium and chromium-driver; setup.sh installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing (pip install -e '.[test]')"
    return None


class Browser:
    """One headless Chromium; ``quit()`` ends it and removes its profile."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        os.environ.setdefault("SE_OFFLINE", "true")
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        self.profile = tempfile.mkdtemp(prefix="wgtrace-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--window-size={width},{height}")
        opts.add_argument(f"--user-data-dir={self.profile}")
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, script: str, *args, timeout: float = 20.0):
        """Until ``script`` returns something true; that value."""
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(lambda d: d.execute_script(script, *args))

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


class ServeProcess:
    """``python3 -m wgtrace serve --port 0 ARGS`` in a subprocess; ``url`` once it listens."""

    def __init__(self, *args: str, timeout: float = 20.0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "wgtrace", "serve", "--port", "0", *args], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "COLUMNS": "200"})
        line = self.proc.stdout.readline()
        if "http://" not in line:
            self.proc.kill()
            raise RuntimeError(f"wgtrace serve did not start: {line}{self.proc.stderr.read()}")
        self.url = line.split("wgtrace serve: ", 1)[1].split()[0]
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 20.0) -> tuple[int, str]:
        """Ctrl-C, as a user stops it; (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return self.proc.returncode, self.proc.stderr.read()


def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            out.append(int(p))
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False

