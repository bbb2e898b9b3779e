"""Capture on a real host: tcpdump there, its pcap stream read here, frame by frame, as it comes.

tcpdump runs on the host with ``-i any`` (every interface, Linux cooked v2 headers that name the
interface by index), nanosecond timestamps, packet-buffered output (``-U -w -``), a short
snapshot length and a packet cap, and a tight filter: the probe's own packets (they carry
wgtrace's mark, or are TCP SYN/RST), ICMP errors, WireGuard's UDP by the hosts' ports, ARP.
The stream comes back over the host's SSH connection and is parsed incrementally here;
nothing of it reaches a shell. The remote side ends tcpdump as soon as we close its stdin.
"""
from __future__ import annotations

import os
import shlex
import struct
import subprocess

from .base import CaptureSource, Frame

LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
SNAPLEN = 256
MAX_PACKETS = 20000
# "wgtrace:" as the probe's payload starts (trace/probe.py MARK), as two 32-bit words
MARK_WORDS = ("0x77677472", "0x6163653a")


def capture_filter(udp_ports: set[int], wg_ifindexes: set[int] = frozenset()) -> str:
    """The probe (ICMP or UDP with wgtrace's mark, any TCP SYN or RST: a probe's SYN and its
    answer), ICMP errors, WireGuard datagrams by port, ARP; the same for IPv6 (ICMPv6 errors,
    neighbour discovery). Established TCP (our own SSH) never matches. WireGuard datagrams inside a
    WireGuard interface are left out: there they can only be a tunnel routed into itself, a storm
    that would fill the capture (the probe going in shows it)."""
    icmp_mark = f"icmp[8:4] = {MARK_WORDS[0]} and icmp[12:4] = {MARK_WORDS[1]}"
    udp_mark = f"udp[8:4] = {MARK_WORDS[0]} and udp[12:4] = {MARK_WORDS[1]}"
    # IPv6: tcpdump indexes no transport header there; offsets past a plain 40-byte header
    mark6 = f"ip6[48:4] = {MARK_WORDS[0]} and ip6[52:4] = {MARK_WORDS[1]}"
    icmp6 = " or ".join(f"ip6[40] = {t}" for t in (1, 2, 3, 4, 135, 136, 137))
    parts = [f"(icmp and (icmp[0] = 3 or icmp[0] = 4 or icmp[0] = 5 or icmp[0] = 11 or icmp[0] = 12 or ({icmp_mark})))",
             f"(udp and {udp_mark})",
             "(tcp and tcp[13] & 0x06 != 0)",
             "arp",
             f"(icmp6 and ({icmp6} or ((ip6[40] = 128 or ip6[40] = 129) and {mark6})))",
             f"(ip6 and udp and {mark6})",
             "(ip6 and tcp and ip6[53] & 0x06 != 0)"]
    ports = sorted(p for p in udp_ports if 0 < p < 65536)[:200]
    if ports:
        inside = "".join(f" and not ifindex {i}" for i in sorted(wg_ifindexes)[:50])
        parts.append(f"(udp{inside} and (" + " or ".join(f"port {p}" for p in ports) + "))")
    return " or ".join(parts)


def capture_script(udp_ports: set[int], sudo: bool, wg_ifindexes: set[int] = frozenset()) -> str:
    """tcpdump on the host, ended when our side closes its stdin (or after a minute at most);
    the SSH connection that carries the stream is left out of the filter."""
    s = "sudo -n " if sudo else ""
    return (f"F={shlex.quote(capture_filter(udp_ports, wg_ifindexes))}\n"
            'set -- $SSH_CONNECTION\n'
            '[ -n "$2" ] && F="($F) and not (tcp and host $1 and port $2)"\n'
            'T=""; command -v timeout >/dev/null 2>&1 && T="timeout 60"\n'
            f"$T {s}tcpdump -i any -y LINUX_SLL2 --immediate-mode --time-stamp-precision=nano -U -w - -s {SNAPLEN} "
            f'-c {MAX_PACKETS} -n -- "$F" &\n'
            "p=$!\ncat >/dev/null\nkill $p 2>/dev/null\nwait $p 2>/dev/null\n")


class PcapStream:
    """Incremental pcap reader: feed bytes as they arrive, get whole records."""

    def __init__(self) -> None:
        self.buf = b""
        self.endian = ""
        self.nano = False
        self.linktype = 0
        self.error = ""

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """(timestamp ns, original length, captured bytes) of each complete record."""
        self.buf += data
        out = []
        if not self.endian:
            if len(self.buf) < 24:
                return out
            magic = self.buf[:4]
            for endian in ("<", ">"):
                m = struct.unpack(endian + "I", magic)[0]
                if m in (0xA1B2C3D4, 0xA1B23C4D):
                    self.endian, self.nano = endian, m == 0xA1B23C4D
                    break
            else:
                self.error = "not a pcap stream"
                self.buf = b""
                return out
            self.linktype = struct.unpack(self.endian + "I", self.buf[20:24])[0] & 0x0FFFFFFF
            self.buf = self.buf[24:]
        while len(self.buf) >= 16:
            sec, frac, caplen, origlen = struct.unpack(self.endian + "IIII", self.buf[:16])
            if caplen > 262144:
                self.error = "corrupt pcap record"
                self.buf = b""
                break
            if len(self.buf) < 16 + caplen:
                break
            data = self.buf[16:16 + caplen]
            self.buf = self.buf[16 + caplen:]
            out.append((sec * 1_000_000_000 + (frac if self.nano else frac * 1000), origlen, data))
        return out


def frame_of(linktype: int, ts_ns: int, origlen: int, data: bytes, names: dict[int, str]) -> Frame | None:
    """A Frame as a packet socket would give it: a synthetic Ethernet header for IP and ARP on
    Ethernet-like links, raw IP for tun/WireGuard (hatype 65534), the interface by name. A frame
    cut at the snapshot length is padded back to its length (headers are what is read;
    lengths tie WireGuard datagrams to what they carry)."""
    if linktype == LINKTYPE_LINUX_SLL2 and len(data) >= 20:
        proto, _, ifindex, hatype, pkttype, alen = struct.unpack("!HHIHBB", data[:12])
        addr, payload, iface = data[12:12 + min(alen, 8)], data[20:], names.get(ifindex, f"if{ifindex}")
        head = 20
    elif linktype == LINKTYPE_LINUX_SLL and len(data) >= 16:
        pkttype, hatype, alen = struct.unpack("!HHH", data[:6])
        addr, proto, payload, iface, head = data[6:6 + min(alen, 8)], struct.unpack("!H", data[14:16])[0], \
            data[16:], "any", 16
    else:
        return None
    payload = payload + b"\0" * max(0, origlen - head - len(payload))
    if hatype == 65534 or proto not in (0x0800, 0x0806):
        frame, hatype = payload, 65534
    else:
        src = addr[:6] if len(addr) >= 6 else b"\0" * 6
        frame, hatype = b"\0" * 6 + src + struct.pack("!H", proto) + payload, 1
    return Frame(ts_ns / 1e9, iface, pkttype == 4, hatype, frame, pkttype == 3, ts_ns)


class TcpdumpCapture(CaptureSource):
    """One host's capture: its tcpdump over SSH, pollable through one epoll fd."""

    def __init__(self, proc: subprocess.Popen, names: dict[int, str], ignore: set[str], host: str,
                 target: str = "") -> None:
        self.proc, self.names, self.ignore, self.host, self.target = proc, names, ignore, host, target
        self.stream = PcapStream()
        self.listening = False
        self.problem = ""
        self.noted = False                   # its blindness is in the host's notes already
        self.stderr = b""
        self.eof = False
        for f in (proc.stdout, proc.stderr):
            os.set_blocking(f.fileno(), False)

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def ifaces(self) -> list[str]:
        return [n for n in self.names.values() if n not in self.ignore]

    def blind(self) -> str:
        """Why this capture sees nothing, as one sentence ("" while it listens)."""
        if self.listening:
            return ""
        t = self.problem.lower()
        if "open failed" in t or "session request failed" in t or "refused by peer" in t:
            from .sshconn import explain
            return explain(self.host, self.target, self.problem).rstrip(".") + ": packets there are not seen."
        return f"tcpdump on {self.host} did not start ({self.problem or 'no answer in time'}): packets there are not seen."

    def poll_stderr(self) -> None:
        try:
            chunk = os.read(self.proc.stderr.fileno(), 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self.stderr += chunk[:4096]
            if b"listening on" in self.stderr:
                self.listening = True
        elif self.proc.poll() is not None and not self.listening:
            text = self.stderr.decode(errors="replace").strip().splitlines()
            self.problem = text[-1][:200] if text else "tcpdump ended at once"

    def read(self) -> list[Frame] | None:
        frames = []
        while not self.eof:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            for ts_ns, origlen, data in self.stream.feed(chunk):
                f = frame_of(self.stream.linktype, ts_ns, origlen, data, self.names)
                if f is not None and f.iface not in self.ignore:
                    frames.append(f)
        if self.eof and not frames:
            return None
        return frames

    def close(self) -> None:
        """Closing tcpdump's stdin ends it on the host; the ssh client follows."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(1.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


class NoCapture(CaptureSource):
    """A host we cannot capture on (unreachable, no tcpdump): a source that is gone at once."""

    def __init__(self, why: str = "") -> None:
        self.why = why
        self.r, w = os.pipe()
        os.close(w)

    def fileno(self) -> int:
        return self.r

    def blind(self) -> str:
        return self.why or "it cannot be captured on"

    def read(self) -> list[Frame] | None:
        return None

    def close(self) -> None:
        os.close(self.r)
