"""One pcapng file per probe: every frame the trace kept, one interface block per ``node:iface``.

Written with scapy's pcapng writer (already a dependency), with two changes: no nameless
interface block 0 before the first real one, and timestamps at nanosecond resolution
(if_tsresol = 9) as the kernel stamped them. Wireshark shows ``bcc:wg0`` in its interface
column. libpcap (so ``tcpdump -r``) reads a file only when all its interfaces share one link
type, and a lab mixes Ethernet (veth) with raw IP (WireGuard): every frame is therefore
written as Linux cooked capture (SLL, what ``tcpdump -i any`` wrote for years), which keeps the
direction, the device type and the source address of each frame. (Its v2 carries an interface
index, which tcpdump would look up among the host's interfaces and name wrongly.)
"""
from __future__ import annotations

import struct
from decimal import Decimal
from pathlib import Path

from ..errors import UsageError


def _writer(path: str):
    from scapy.utils import RawPcapNgWriter

    class Writer(RawPcapNgWriter):
        def __init__(self, filename: str) -> None:
            super().__init__(filename)
            self.tsresol = 1_000_000_000
            self.interfaces2id = {}

        def _write_header(self, pkt) -> None:
            if not self.header_present:
                self.header_present = True
                self._write_block_shb()

        def _write_block_idb(self, linktype, ifname=None) -> None:
            body = struct.pack("<HHI", linktype, 0, 262144)
            opts = b""
            if ifname is not None:
                opts += struct.pack("<HH", 2, len(ifname)) + self._add_padding(ifname)
            opts += struct.pack("<HHB3x", 9, 1, 9)        # if_tsresol: 10^-9 s
            opts += struct.pack("<HH", 0, 0)
            self.f.write(self.build_block(struct.pack("<I", 1), body, options=opts))

        def _write_packet(self, packet, linktype, sec=None, usec=None, caplen=None, wirelen=None,
                          ifname=None, direction=None, comments=None) -> None:
            if ifname not in self.interfaces2id:
                self.interfaces2id[ifname] = len(self.interfaces2id)
                self._write_block_idb(linktype, ifname)
            self._write_block_epb(packet, ifid=self.interfaces2id[ifname], timestamp=sec,
                                  caplen=len(packet), orglen=len(packet), comments=comments,
                                  flags=direction)

    return Writer(path)


LINKTYPE_LINUX_SLL = 113
ARPHRD = {1: 1, 101: 65534}          # pcap link type of the frame -> ARPHRD of its device


def sll(frame: bytes, linktype: int, outgoing: bool) -> bytes:
    """The frame behind a Linux cooked header (Ethernet header taken off, its data kept)."""
    if linktype == 1 and len(frame) >= 14:
        proto, addr, payload = frame[12:14], frame[6:12], frame[14:]
    else:
        proto, addr, payload = b"\x08\x00" if frame[:1] and frame[0] >> 4 == 4 else b"\x86\xdd", b"", frame
    head = struct.pack("!HHH", 4 if outgoing else 0, ARPHRD.get(linktype, 65534), len(addr))
    return head + addr.ljust(8, b"\0") + proto + payload


def write_pcapng(captures, path: str) -> int:
    """Write the captures (trace/capture.Capture with raw frames) to ``path``; returns the count."""
    w = _writer(path)
    n = 0
    try:
        w._write_header(None)
        for c in sorted(captures, key=lambda c: c.ts):
            if not c.raw:
                continue
            ts = Decimal(c.ts_ns) / 1_000_000_000 if c.ts_ns else Decimal(repr(c.ts))
            w._write_packet(sll(c.raw, c.linktype, c.dir == "out"), LINKTYPE_LINUX_SLL, sec=ts,
                            ifname=f"{c.node}:{c.iface}".encode(), direction=1 if c.dir == "in" else 2)
            n += 1
    finally:
        w.f.close()
    return n


def emit(result, dest, lang, console) -> int:
    obs = getattr(result, "observation", None)
    if obs is None or not dest:
        raise UsageError("--pcap needs a trace and a file name.")
    p = Path(dest)
    if p.is_dir():
        raise UsageError(f"--pcap {dest}: is a directory; give a file name like probe.pcapng.")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        return write_pcapng(obs.captures, dest)
    except OSError as e:
        raise UsageError(f"--pcap {dest}: cannot write there ({e.strerror}).") from None
