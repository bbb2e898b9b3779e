"""``wgtrace serve`` against real labs, in a real browser (headless Debian Chromium).

One seed lab, broken with company-return-rule-missing, is shared by the module, and so are one
server (``--allow-probes``, started as a user would, in a subprocess) and one browser. The page
must list the lab, draw its picture, diagnose from two nodes picked on the page (the path in
green, the stop in red, the verdict beside it), check every pair; and hold up: a lab taken down
while its page is open, labs and nodes that do not exist, a port in use, streams that end
mid-way, fifty at once, Ctrl-C with a probe under way. No private key is ever in what it sends.
Other people's labs may be listed too: tests only look at their own.
"""
from __future__ import annotations

import fcntl
import http.client
import json
import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

import browser_support as B
from wgtrace.lab.runtime import lab_dir

pytestmark = pytest.mark.lab
FAULT = "company-return-rule-missing"


@pytest.fixture(scope="module")
def broken(seed_lab):
    from conftest import run_cli
    r = run_cli("break", FAULT, "--lab", seed_lab.name)
    assert r.returncode == 0, r.stderr
    return seed_lab


@pytest.fixture(scope="module")
def server(broken):
    s = B.ServeProcess("--allow-probes", "--interval", "0.5")
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser():
    why = B.browser_blocker()
    if why:
        if os.environ.get("WGTRACE_REQUIRE_LAB", "") not in ("", "0"):
            pytest.fail(f"WGTRACE_REQUIRE_LAB=1 but the browser tests cannot run: {why}", pytrace=False)
        pytest.skip(why)
    b = B.Browser()
    try:
        yield b
    finally:
        b.quit()


def call(port: int, method: str, path: str, body: dict | None = None, timeout: float = 60) -> tuple[int, dict | str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers={"Content-Type": "application/json"} if body is not None else {})
        r = c.getresponse()
        text = r.read().decode()
        return r.status, json.loads(text) if "json" in (r.getheader("Content-Type") or "") else text
    finally:
        c.close()


CARD = 'return document.querySelector(`section.lab[data-lab="${arguments[0]}"]`)'


def card_state(b: B.Browser, lab: str) -> dict | None:
    return b.js(CARD + """?.dataset.status ? {
        status: document.querySelector(`section.lab[data-lab="${arguments[0]}"]`).dataset.status,
        nodes: document.querySelectorAll(`section.lab[data-lab="${arguments[0]}"] svg rect[data-node]`).length} : null""",
                lab)


# --- the page, and a diagnosis drawn from it ------------------------------------------------------------

def test_the_page_lists_the_lab_and_draws_a_diagnosis_started_from_it(server, browser, broken):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    b, lab = browser, broken.name
    b.driver.get(server.url)
    assert b.wait(CARD, lab)
    assert card_state(b, lab) == {"status": "up", "nodes": 7}
    card = b.driver.find_element(By.CSS_SELECTOR, f'section.lab[data-lab="{lab}"]')
    assert "11/11" in card.find_element(By.CSS_SELECTOR, ".stage").text
    # a request the server refuses is one sentence on the card
    Select(card.find_element(By.CSS_SELECTOR, "select.src")).select_by_value("target")
    Select(card.find_element(By.CSS_SELECTOR, "select.dst")).select_by_value("target")
    card.find_element(By.CSS_SELECTOR, "button.diagnose").click()
    assert b.wait(CARD + "?.querySelector('.verdict.failed .error')?.textContent", lab) == "Pick two different nodes."
    Select(card.find_element(By.CSS_SELECTOR, "select.src")).select_by_value("home")
    Select(card.find_element(By.CSS_SELECTOR, "select.dst")).select_by_value("target")
    card.find_element(By.CSS_SELECTOR, "button.diagnose").click()
    b.wait(CARD + "?.querySelector('.verdict.stopped .cause')", lab, timeout=60)
    v = card.find_element(By.CSS_SELECTOR, ".verdict")
    assert v.find_element(By.CSS_SELECTOR, ".cause").text == "forward-filtered"
    assert "company ens192" in v.find_element(By.CSS_SELECTOR, ".where").text
    assert "iptables -t filter -A FORWARD -i ens192 -o wg0 -j ACCEPT" in v.find_element(By.CSS_SELECTOR, ".fix").text
    # the picture beside it: the stop in red, the path in green, a node off the path as it was
    stroke = lambda n: b.js(CARD + f"?.querySelector('rect[data-node=\"{n}\"]').getAttribute('stroke')", lab)
    assert stroke("company") == "#c00"
    assert stroke("home") == stroke("bcc") == stroke("target") == "#2a2"
    # every pair: the matrix gives the cause and place of each failing one
    card.find_element(By.CSS_SELECTOR, "button.check").click()
    b.wait(CARD + "?.querySelector('table.checks')", lab, timeout=120)
    cells = b.js(CARD + "?.querySelectorAll('table.checks td.bad').length", lab)
    assert cells >= 1
    assert "forward-filtered @company" in card.find_element(By.CSS_SELECTOR, "table.checks").text
    if os.environ.get("WGTRACE_SHOTS"):            # a directory: see the page as the test left it
        b.driver.save_screenshot(str(Path(os.environ["WGTRACE_SHOTS"]) / "serve-test.png"))


def test_no_private_key_in_any_page_answer_or_event(server, browser, broken):
    secrets = {p.read_text().strip() for p in lab_dir(broken.name).glob("*/root/private")}
    assert len(secrets) == 3 and all(len(s) == 44 for s in secrets)
    status, diagnosis = call(server.port, "POST", f"/api/labs/{broken.name}/diagnose", {"src": "company", "dst": "home"})
    assert status == 200 and diagnosis["evidence"], diagnosis
    seen = [call(server.port, "GET", "/")[1], json.dumps(call(server.port, "GET", "/api/state")[1]), json.dumps(diagnosis),
            json.dumps(call(server.port, "GET", f"/api/labs/{broken.name}")[1]),
            stream(server.port, b"event: snapshot").decode(), browser.driver.page_source]
    for text in seen:
        for s in secrets:
            assert s not in text
    assert broken.name in seen[1]


# --- what does not exist, what is in use, what is read-only ---------------------------------------------------

def test_labs_and_nodes_that_do_not_exist(server, broken):
    status, body = call(server.port, "GET", "/api/labs/nosuchlab")
    assert (status, body) == (404, {"error": "No lab named nosuchlab is up on this server."})
    status, body = call(server.port, "POST", "/api/labs/nosuchlab/diagnose", {"src": "a", "dst": "b"})
    assert status == 404
    status, body = call(server.port, "POST", f"/api/labs/{broken.name}/diagnose", {"src": "nosuch", "dst": "home"})
    assert status == 404 and body["error"].startswith(f"Lab {broken.name} has no node nosuch (its nodes: internet,")
    status, body = call(server.port, "GET", "/no/such/page")
    assert status == 404 and "There is no page /no/such/page here." in body


def test_a_port_in_use_is_one_sentence_and_exit_2(server, cli):
    r = cli("serve", "--port", str(server.port))
    assert r.returncode == 2
    assert r.stderr.strip() == (f"wgtrace: port {server.port} on 127.0.0.1 is in use (another wgtrace serve?): "
                                f"choose another with --port.")


def test_read_only_by_default(browser, broken):
    s = B.ServeProcess()
    try:
        browser.driver.get(s.url)
        assert browser.wait(CARD, broken.name)
        assert browser.js(CARD + "?.querySelector('button.diagnose').disabled", broken.name)
        why = browser.js(CARD + "?.querySelector('.why').textContent", broken.name)
        assert why.startswith("Read-only: this page shows the labs but sends no probe.")
        status, body = call(s.port, "POST", f"/api/labs/{broken.name}/diagnose", {"src": "home", "dst": "target"})
        assert status == 403 and body["error"] == why
    finally:
        rc, err = s.stop()
    assert rc == 0 and "wgtrace serve stopped." in err


# --- labs that go away, streams that end, many pages ---------------------------------------------------------

def test_a_lab_taken_down_while_its_page_is_open(server, browser, lab_factory):
    from wgtrace.lab.teardown import lab_down
    lab = lab_factory.up()
    browser.driver.get(server.url)
    browser.wait(CARD + "?.dataset.status === 'up'", lab.name)
    lab_down(lab.name)
    browser.wait(CARD + "?.dataset.status === 'gone'", lab.name)
    note = browser.js(CARD + "?.querySelector('.note').textContent", lab.name)
    assert note.startswith("This lab was taken down at ")
    assert browser.js(CARD + "?.querySelector('button.diagnose').disabled", lab.name)
    status, body = call(server.port, "POST", f"/api/labs/{lab.name}/diagnose", {"src": "home", "dst": "target"})
    assert (status, body) == (404, {"error": f"No lab named {lab.name} is up on this server."})


def stream(port: int, until: bytes, limit: float = 10.0, since: str = "") -> bytes:
    s = socket.create_connection(("127.0.0.1", port), timeout=limit)
    try:
        s.sendall(f"GET /events?since={since} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        got, end = b"", time.monotonic() + limit
        while until not in got and time.monotonic() < end:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        s.close()


def test_streams_cut_mid_way_and_fifty_at_once(server, broken):
    # a client that vanishes mid-stream (a reset, not a polite close)
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    assert call(server.port, "GET", "/api/state")[0] == 200
    # fifty pages at once: each gets the whole state, the server answers meanwhile
    socks = []
    try:
        for _ in range(50):
            c = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            c.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
            socks.append(c)
        for c in socks:
            got = b""
            while b"event: snapshot" not in got or broken.name.encode() not in got:
                chunk = c.recv(65536)
                assert chunk, "a stream ended before its snapshot"
                got += chunk
        t = time.monotonic()
        assert call(server.port, "GET", "/api/state")[0] == 200
        assert time.monotonic() - t < 5
    finally:
        for c in socks:
            c.close()
    assert server.proc.poll() is None


def test_ctrl_c_with_a_probe_under_way_leaves_nothing_running(broken):
    s = B.ServeProcess("--allow-probes")
    kids_seen: set[int] = set()
    answer: list = []
    def ask():
        try:
            answer.append(call(s.port, "POST", f"/api/labs/{broken.name}/diagnose", {"src": "home", "dst": "target"}))
        except OSError as e:
            answer.append(e)
    t = threading.Thread(target=ask)
    t.start()
    live = stream(s.port, b'"running":"home target', since="")    # the page is told the probe started
    assert b"event: snapshot" in live
    for _ in range(10):
        kids_seen |= set(B.children(s.pid))            # the probe's helpers, if it has any
        time.sleep(0.01)
    ctrl_c = time.time()
    rc, err = s.stop()
    t.join(30)
    assert rc == 0 and err.strip().endswith("wgtrace serve stopped.")
    assert not B.alive(s.pid) and not [k for k in kids_seen if B.alive(k)]
    with socket.socket() as again:                    # nobody listens on the port any more
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # (closed connections may wait)
        again.bind(("127.0.0.1", s.port))
        again.listen()
    with open(lab_dir(broken.name) / "probe.lock", "a+") as f:   # and the lab's probe lock too
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(f, fcntl.LOCK_UN)
    # the probe under way was let finish, and answered
    assert answer and answer[0][0] == 200 and answer[0][1]["cause"] == "forward-filtered", answer
    assert answer[0][1]["at"] > ctrl_c              # it was still under way when Ctrl-C came
