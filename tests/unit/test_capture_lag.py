"""The capture loop waits for frames that come late (trace/capture.py): a remote capture's frames
reach us a round trip after they happened, so after the answer is back the loop reads on for the
slowest node's lag; a node whose WireGuard floods (a tunnel routed into itself) keeps nobody waiting."""
from __future__ import annotations

import os
import time

from wgtrace.nodes.base import CaptureSource, Frame
from wgtrace.trace.capture import WG_MOVES, Observation, _loop, _Tap
from wgtrace.trace.probe import Probe


class Timed(CaptureSource):
    """Frames handed out at given times after the start (a pipe makes it pollable)."""

    def __init__(self, frames: list[tuple[float, Frame]]) -> None:
        self.r, self.w = os.pipe()
        self.frames, self.t0 = sorted(frames, key=lambda x: x[0]), time.monotonic()
        os.write(self.w, b"x")

    def fileno(self) -> int:
        return self.r

    def read(self):
        now = time.monotonic() - self.t0
        due = [f for t, f in self.frames if t <= now]
        self.frames = [(t, f) for t, f in self.frames if t > now]
        return due

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def packets(p: Probe) -> tuple[bytes, bytes]:
    req = bytearray(p.build())
    rep = bytearray(req)
    rep[12:16], rep[16:20] = req[16:20], req[12:16]
    rep[20] = 0                                   # echo reply, the same payload
    return bytes(req), bytes(rep)


def frame(data: bytes, outgoing: bool) -> Frame:
    return Frame(time.time(), "eth0", outgoing, 65534, data)


def run(lag: float, late: float) -> Observation:
    p = Probe.new("a", "10.0.0.2")
    p.src_ip = "10.0.0.1"
    req, rep = packets(p)
    src = Timed([(0.01, frame(req, True)), (0.03, frame(rep, False))])
    other = Timed([(late, frame(req, False))])      # b's frame of the request, arriving late
    obs = Observation(p)
    try:
        _loop([_Tap(src, "a", set()), _Tap(other, "b", set())], obs, 0.25, 3.0, False, lag)
    finally:
        src.close()
        other.close()
    return obs


def test_late_frames_of_other_nodes_are_waited_for():
    obs = run(lag=0.2, late=0.12)
    assert obs.ended == "reply" and {c.node for c in obs.captures} == {"a", "b"}
    obs = run(lag=0.0, late=0.12)                   # a lab: frames come at once, nobody waits
    assert obs.ended == "reply" and {c.node for c in obs.captures} == {"a"}


def test_a_flood_of_datagrams_keeps_nobody_waiting():
    p = Probe.new("a", "10.0.0.2")
    p.src_ip = "10.0.0.1"
    req, _ = packets(p)
    # WireGuard data datagrams (type 4) to the endpoint, one a millisecond for 3 s: a tunnel into itself
    body = bytes([4, 0, 0, 0]) + b"\1" * 124
    wg = bytes([0x45, 0, 0, 28 + len(body), 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 9]) + \
        (51820).to_bytes(2, "big") * 2 + (8 + len(body)).to_bytes(2, "big") + b"\0\0" + body
    flood = Timed([(0.01, frame(req, True))] + [(0.02 + i * 0.001, frame(wg, True)) for i in range(3000)])
    obs = Observation(p)
    t = time.monotonic()
    try:
        _loop([_Tap(flood, "a", set())], obs, 0.25, 3.0, False, 0.0)
    finally:
        flood.close()
    assert obs.ended == "quiet" and time.monotonic() - t < 1.5       # not the 3 s timeout
    assert sum(1 for c in obs.captures if c.pkt.wg_type) <= 200 and obs.other.get("a", 0) > 0
    assert WG_MOVES < 200
