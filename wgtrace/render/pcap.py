"""Write captures as classic pcap files, one per interface (tcpdump -r and Wireshark open them)."""
from __future__ import annotations

import struct
from pathlib import Path


def write_pcaps(captures, directory: str) -> list[Path]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], list] = {}
    for c in sorted(captures, key=lambda c: c.ts):
        groups.setdefault((c.node, c.iface), []).append(c)
    paths = []
    for (node, iface), caps in sorted(groups.items()):
        path = out / f"{node}-{iface}.pcap"
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, caps[0].linktype))
            for c in caps:
                sec = int(c.ts)
                usec = int((c.ts - sec) * 1e6)
                f.write(struct.pack("<IIII", sec, usec, len(c.raw), len(c.raw)))
                f.write(c.raw)
        paths.append(path)
    return paths
