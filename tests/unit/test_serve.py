"""wgtrace serve without a lab: the JSON a page gets (progress, matrix, a diagnosis's path, keys
redacted), the hub of events, the page's template, and the HTTP server itself on loopback (routes,
refusals, event streams that come and go) with labs made by hand."""
from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from wgtrace.serve import page, view
from wgtrace.serve.app import App
from wgtrace.serve.labs import Reading, Shape
from wgtrace.serve.live import Hub
from wgtrace.serve.run import accepted_hosts, bind, PortInUse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "verdicts"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50"><rect data-node="a"/></svg>'
NODES = ("a", "b", "c")


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def shape(**kw) -> Shape:
    return Shape(NODES, (("base", "the start"), ("one", "first"), ("two", "second")), 2, "a", SVG, ("a", "c"), **kw)


def reading(name="lab1", status="up", started=100.0, **kw) -> Reading:
    return Reading(name, status, "x.toml", 2, "two", started, model=shape(), **kw)


def lab_json(name="lab1", **kw) -> dict:
    r = reading(name, **kw)
    return view.lab(r, view.picture_id(SVG), None, None, None)


# --- keys -----------------------------------------------------------------------------------------

def test_every_key_but_the_public_ones_is_hidden_wherever_it_is():
    secret, public = key(), key()
    data = {"evidence": [{"detail": f"peer {public} and private {secret}."}], "n": 3,
            "fix": ("wg", f"set wg0 private-key {secret}"), "alone": secret}
    out = view.redact(data, {public})
    text = json.dumps(out)
    assert secret not in text and public in text
    assert out["alone"] == view.HIDDEN and out["n"] == 3
    # not a key: a longer base64 text, or a word of 44 letters that does not end as a key does
    long = base64.b64encode(os.urandom(48)).decode()
    assert view.redact(long) == long
    assert view.redact("a" * 44) == "a" * 44


def test_real_wireguard_keys_have_the_shape_redact_looks_for():
    from wgtrace.nodes.uapi import x25519_base
    for _ in range(20):
        priv = os.urandom(32)
        for k in (priv, x25519_base(priv)):
            text = base64.b64encode(k).decode()
            assert view.redact(f"key={text}") == f"key={view.HIDDEN}"


# --- progress and matrix ---------------------------------------------------------------------------

def test_progress_of_this_build_only():
    lesson = {"kind": "lesson", "name": "seed", "lab": "lab1", "stage": 4, "started": 150.0, "lab_started": 100.0,
              "passed": {"wg0": {}, "peers": {}, "x": {}}, "finished": 0,
              "events": [{"t": 160.0, "type": "diagnosis", "cause": "route-missing", "stop": {"node": "b"}}]}
    old = {**lesson, "lab_started": 50.0, "stage": 9}
    other = {**lesson, "lab": "lab2"}
    p = view.progress([old, lesson, other], "lab1", 100.0, stages=11)
    assert p["kind"] == "lesson" and p["stage"] == 4 and p["stages"] == 11 and p["passed"] == 3
    assert p["last"] == {"cause": "route-missing", "stop": "b"} and p["updated"] == 160.0
    assert view.progress([old, other], "lab1", 100.0, 11) is None


def test_exercise_progress_counts_checks_and_fixes():
    ex = {"kind": "exercise", "name": "exercise", "lab": "lab1", "started": 101.0, "lab_started": 0.0,
          "faults": ["f1", "f2"], "finished": 0,
          "events": [{"t": 102, "type": "exercise"}, {"t": 103, "type": "check", "passed": False, "cause": "mtu",
                                                      "stop": {"node": "b"}},
                     {"t": 104, "type": "fix", "command": "b# ip link set …"},
                     {"t": 105, "type": "check", "passed": True, "cause": "reachable", "stop": None}]}
    p = view.progress([ex], "lab1", 100.0, 5)
    assert (p["faults"], p["checks"], p["fixes"], p["passed"]) == (2, 2, 1, True)
    assert p["last"] == {"cause": "reachable", "stop": None}
    # an exercise record older than the build belongs to an earlier lab of that name
    assert view.progress([{**ex, "started": 10.0}], "lab1", 100.0, 5) is None


def test_matrix_cells_and_builds():
    m = {"at": 5.0, "started": 100.0, "stage": 2, "lab": "lab1", "passed": False, "checks": [
        {"src": "a", "dst": "c", "probe": "icmp", "cause": "reachable", "stop": None, "reachable": True},
        {"src": "a", "dst": "c", "probe": "tcp/22", "cause": "port-closed", "stop": "c", "reachable": False},
        {"src": "b", "dst": "c", "probe": "icmp", "cause": "forward-filtered", "stop": "b", "reachable": False}]}
    v = view.matrix(m, 100.0)
    assert v["srcs"] == ["a", "b"] and v["dsts"] == ["c", "c tcp/22"]
    assert v["cells"] == [[{"ok": True}, {"ok": False, "cause": "port-closed", "stop": "c"}],
                          [{"ok": False, "cause": "forward-filtered", "stop": "b"}, None]]
    assert view.matrix(m, 200.0) is None and view.matrix(None, 100.0) is None
    m["checks"] += [{"src": "a", "dst": "c", "probe": "icmp", "family": 6, "cause": "reachable", "stop": None,
                     "reachable": True, "leak": "wlan0"},
                    {"src": "a", "dst": "fd00::3", "probe": "icmp", "family": 6, "cause": "reachable", "stop": None,
                     "reachable": True, "leak": None}]
    v = view.matrix(m, 100.0)            # one column per family, as check --all shows it
    assert v["dsts"] == ["c", "c tcp/22", "c v6", "fd00::3"] and v["cells"][0][2:] == [{"ok": True, "leak": "wlan0"},
                                                                                      {"ok": True}]


# --- a diagnosis's path on the picture ---------------------------------------------------------------

def recorded(name: str) -> dict:
    """A diagnosis recorded on a real seed lab, replayed, as Diagnosis.to_json gives it."""
    from wgtrace.diagnose.replay import load_context
    from wgtrace.diagnose.rules import decide
    from wgtrace.diagnose.run import Diagnosis
    from wgtrace.model.labfile import find_lab
    rec = json.loads((FIXTURES / "seed" / f"{name}.json").read_text())
    ctx = load_context(rec["context"], str(find_lab("seed")))
    return Diagnosis(ctx.res, decide(ctx), "en", context=ctx).to_json()


def test_path_of_a_stopped_probe_ends_in_red_where_the_verdict_says():
    d = recorded("bcc-forward-rules-missing")
    nodes, stop = view.path_of(d)
    assert stop == "bcc" == d["stop"]["node"]
    assert nodes[0] == "home" and "bcc" in nodes and "target" not in nodes
    v = view.verdict(d, SVG, 7.0)
    assert v["stop_node"] == "bcc" and v["cause"] == "forward-filtered" and v["probe"] == "icmp"
    assert v["fix"] == [{"node": "bcc", "command": "iptables -t filter -A FORWARD -i wg0 -j ACCEPT"}]
    assert all(h["role"] in ("request", "reply") for h in v["hops"]) and v["hops"][0]["node"] == "home"
    assert v["picture"] == SVG and v["at"] == 7.0


def test_path_of_a_reachable_probe_has_no_stop():
    d = {**recorded("bcc-forward-rules-missing"), "reachable": True, "cause": "reachable",
         "nodes": ["home", "bcc", "target"]}
    assert view.path_of(d) == (["home", "bcc", "target"], None)
    assert view.probe_label("tcp", 22) == "tcp/22"


def test_the_picture_marks_every_node_and_cable():
    from wgtrace.output.svg import topology_svg
    from wgtrace.model.labfile import load_lab
    lab = load_lab("seed")
    svg = topology_svg(lab, "home", ["home", "bcc"], "bcc")
    for n in lab.nodes:
        assert f'data-node="{n}"' in svg
    assert 'data-node="bcc" x=' in svg and 'stroke="#c00"' in svg
    assert svg.count("data-link=") == len(lab.links)


# --- the lab as the page gets it, and the hub ------------------------------------------------------

def test_lab_json_is_the_same_while_nothing_changes():
    a, b = lab_json(), lab_json()
    assert a == b
    assert a["stage"] == {"index": 2, "of": 2, "name": "two", "title": "second"}
    assert a["nodes"] == list(NODES) and a["probe_pair"] == ["a", "c"] and a["checks"] == 2
    broken = view.lab(reading(status="broken", missing=["b"]), None, None, None, None)
    assert broken["missing"] == ["b"] and broken["status"] == "broken"
    bare = view.lab(Reading("x", "unreadable"), None, None, None, None)
    assert bare["nodes"] == [] and bare["stage"]["index"] == -1


def test_hub_sends_a_change_once_and_knows_when_a_page_needs_everything():
    hub = Hub(keep=3)
    assert hub.put(lab_json(), SVG) and not hub.put(lab_json(), SVG)
    assert hub.since(0, 0) == [(1, "lab", {"lab": lab_json(), "svg": SVG})]
    assert hub.since(1, 0.01) == []                   # nothing new: waited, nothing came
    hub.drop("lab1")
    hub.drop("lab1")                                  # gone once, told once
    assert [e[1] for e in hub.since(1, 0)] == ["gone"]
    for i in range(5):
        hub.put(lab_json(f"x{i}"), SVG)
    assert hub.since(1, 0) is None                    # older than what is kept: a snapshot
    assert hub.since(99, 0) is None                   # from the future (another run)
    snap = hub.snapshot()
    assert [l["name"] for l in snap["labs"]] == [f"x{i}" for i in range(5)]
    assert list(snap["pictures"]) == [view.picture_id(SVG)]
    assert hub.position(f"{hub.run}-4") == 4 and hub.position("other-4") is None and hub.position("") is None


def test_a_waiting_page_wakes_when_something_changes():
    hub = Hub()
    got = []
    t = threading.Thread(target=lambda: got.append(hub.since(0, 5)))
    t.start()
    time.sleep(0.05)
    hub.put(lab_json(), SVG)
    t.join(2)
    assert got and got[0][0][1] == "lab"


# --- the page --------------------------------------------------------------------------------------

def test_state_inlined_in_the_page_cannot_close_its_script():
    evil = {"labs": [{"name": "</script><script>alert(1)</script>"}]}
    text = page.inline_json(evil)
    assert "</script>" not in text and "<" not in text
    assert json.loads(text) == evil
    html = page.render({"run": "r", "seq": 0, "labs": [], "pictures": {}}, "zh", False, "只读")
    assert '<html lang="zh">' in html and "本服务器上的实验" in html and "{{" not in html


def test_only_the_page_s_own_files_are_served():
    assert page.static("app.js")[1].startswith("text/javascript")
    assert page.static("app.css")[1].startswith("text/css")
    for name in ("../page.py", "index.html", "nope.js", "", "app.js/"):
        assert page.static(name) is None, name


def test_every_word_of_the_page_is_in_both_catalogues():
    import re
    from wgtrace.texts import catalogue
    script = (page.STATIC / "app.js").read_text()
    used = set(re.findall(r'say\("([a-z-]+)"\s*[,)]', script))
    used |= {f"status-{s}" for s in ("up", "building", "half-built", "broken", "unreadable", "gone")}
    used |= {f"count-{s}" for s in ("up", "building", "half-built", "broken", "unreadable", "gone")}
    used |= {f"kind-{k}" for k in ("icmp", "tcp", "udp")} | {"phase-request", "phase-reply"}
    for lang in ("en", "zh"):
        missing = used - set(catalogue(lang)["serve"])
        assert not missing, (lang, missing)


def test_host_headers_accepted():
    assert accepted_hosts("0.0.0.0", 80) is None
    ok = accepted_hosts("127.0.0.1", 8765)
    assert {"127.0.0.1:8765", "localhost:8765", "[::1]:8765"} <= ok
    assert "evil.example:8765" not in ok and "127.0.0.1:8766" not in ok
    assert accepted_hosts("::1", 80) >= {"[::1]:80", "[::1]", "localhost"}


# --- the server on loopback, with labs made by hand --------------------------------------------------

@pytest.fixture
def server():
    hub = Hub()
    hub.put(lab_json("lab1"), SVG)
    app = App(hub, None, "read-only here", "en", None)
    srv = bind("127.0.0.1", 0, app)
    app.hosts = accepted_hosts("127.0.0.1", srv.server_address[1])
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        hub.close()
        srv.shutdown()
        srv.server_close()


def request(srv, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=5)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def test_routes_answer_with_one_sentence_when_there_is_nothing(server):
    status, ctype, body = request(server, "GET", "/")
    assert status == 200 and "text/html" in ctype and 'data-lab' not in body and '"lab1"' in body
    status, _, body = request(server, "GET", "/api/labs/lab1")
    assert status == 200 and json.loads(body)["name"] == "lab1"
    status, _, body = request(server, "GET", "/api/labs/nolab")
    assert status == 404 and json.loads(body) == {"error": "No lab named nolab is up on this server."}
    status, ctype, body = request(server, "GET", "/nowhere")
    assert status == 404 and "text/html" in ctype and "There is no page /nowhere here." in body
    status, _, body = request(server, "POST", "/api/labs/lab1/diagnose", json.dumps({"src": "a", "dst": "b"}),
                              {"Content-Type": "application/json"})
    assert status == 403 and json.loads(body) == {"error": "read-only here"}


def test_requests_from_elsewhere_are_refused(server):
    status, _, body = request(server, "GET", "/api/state", headers={"Host": "evil.example"})
    assert status == 403 and "only under the address" in body
    port = server.server_address[1]
    for headers in ({"Content-Type": "text/plain"},
                    {"Content-Type": "application/json", "Origin": "http://evil.example"}):
        status, _, body = request(server, "POST", "/api/labs/lab1/diagnose", "{}", headers)
        assert status == 403 and json.loads(body)["error"] == "Probes are started from this server's own page only."
    status, _, _ = request(server, "POST", "/api/labs/lab1/diagnose", "{}",
                           {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"})
    assert status == 403     # the page's own origin gets through to the read-only refusal


def open_stream(srv, since=""):
    s = socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=5)
    s.sendall(f"GET /events?since={since} HTTP/1.1\r\nHost: 127.0.0.1:{srv.server_address[1]}\r\n\r\n".encode())
    return s


def read_until(s, needle: bytes, limit: float = 5.0) -> bytes:
    got, end = b"", time.monotonic() + limit
    while needle not in got and time.monotonic() < end:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_event_streams_come_and_go_and_the_server_goes_on(server):
    hub = server.app.hub
    s = open_stream(server)
    first = read_until(s, b"event: snapshot")
    assert b"200 OK" in first and b"text/event-stream" in first
    hub.put(lab_json("lab2"), SVG)
    assert b'"name":"lab2"' in read_until(s, b"lab2")
    s.close()                                      # a page closed mid-stream
    hub.put(lab_json("lab3"), SVG)                 # the stream's thread finds out when it writes
    # fifty pages at once, each told of the next change; the page itself still answers meanwhile
    streams = [open_stream(server, f"{hub.run}-{hub.seq}") for _ in range(50)]
    time.sleep(0.3)
    assert request(server, "GET", "/api/state")[0] == 200
    hub.drop("lab1")
    for st in streams:
        assert b"event: gone" in read_until(st, b"event: gone")
        st.close()
    deadline = time.monotonic() + 5
    while hub.streams and time.monotonic() < deadline:
        hub.put(lab_json(f"tick{time.monotonic()}"), SVG)      # writes find the closed ones
        time.sleep(0.05)
    assert hub.streams == 0
    assert request(server, "GET", "/api/labs/lab2")[0] == 200


def test_a_port_in_use_is_one_sentence(server):
    port = server.server_address[1]
    with pytest.raises(PortInUse) as e:
        bind("127.0.0.1", port, server.app)
    assert e.value.message == f"port {port} on 127.0.0.1 is in use (another wgtrace serve?): choose another with --port."
    with pytest.raises(PortInUse):
        bind("192.0.2.77", 0, server.app)          # an address this machine does not have


def test_a_bug_is_one_sentence_and_the_server_goes_on(server, capfd):
    hub = server.app.hub
    labs, hub.labs = hub.labs, None                # the state is broken: every answer needs it
    try:
        status, _, body = request(server, "GET", "/api/state")
    finally:
        hub.labs = labs
    assert status == 500 and json.loads(body) == {
        "error": "The server met an unexpected error (AttributeError); its terminal says more."}
    assert "wgtrace serve: unexpected error on GET /api/state: AttributeError" in capfd.readouterr().err
    assert request(server, "GET", "/api/state")[0] == 200
