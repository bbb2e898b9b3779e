"""``wgtrace discover``: read the hosts, write the lab file that rebuilds their network, check it loads.

The file says where it came from and, as comments, everything discovery left out and why.
It carries no key of any host: ``lab up`` makes fresh ones.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from ..errors import LabFileError
from ..wgquick.onhost import annotate
from .file import load_hosts


def lab_name(want: str | None, output: str | None, fallback: str) -> str:
    from ..model.fields import LAB_NAME_RE
    if want is not None:
        if not LAB_NAME_RE.match(want):
            raise LabFileError(f"--name {want!r}: a lab name is lower-case letters and digits, at most 12 characters.")
        return want
    stem = re.sub(r"[^a-z0-9]", "", Path(output).stem.lower()) if output else ""
    return stem[:12] if stem[:1].isalpha() else fallback


def discover_file(hosts_path: str, output: str | None, name: str | None) -> tuple[str, list[str], dict[str, str]]:
    """(the lab file's text, what was left out, hosts that could not be read and why)."""
    from .discover import discover
    from .open import connect
    from ..model.tomlout import lab_toml
    hf = load_hosts(hosts_path)
    lab = lab_name(name, output, hf.name)
    opened = connect(hf)
    try:
        states = opened.states()
        unseen = dict(opened.unseen)
        if not states:
            raise LabFileError(f"{hosts_path}: no host could be read, so there is nothing to discover.")
        data, notes = discover(lab, states, {n: set(getattr(h, "ignore", ())) for n, h in opened.nodes.items()},
                               f"discovered from the hosts of {Path(hosts_path).name}")
        annotate(data["nodes"], states, notes)      # their wg-quick files: PostUp known as such
    finally:
        opened.close()
    header = [f"Lab file written by 'wgtrace discover --hosts {Path(hosts_path).name}' on "
              f"{time.strftime('%Y-%m-%d %H:%M:%S')}, from {len(states)} host(s). Format: docs/labfile.md.",
              "Keys are not here: 'wgtrace lab up' makes fresh ones. Build it with: wgtrace lab up THIS-FILE"]
    if unseen:
        header += ["", "Hosts that could not be read (not in this file):"] + [f"  {n}: {w}" for n, w in sorted(unseen.items())]
    if notes:
        header += ["", "Left out (a lab file cannot say it, or it would not work in a lab):"] + [f"  {x}" for x in notes]
    text = lab_toml(data, header)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        from ..model.labfile import load_lab
        load_lab(output)         # what we wrote must load: a LabFileError here is a bug, said as one
    else:
        import tempfile
        from ..model.labfile import load_lab
        with tempfile.NamedTemporaryFile("w", suffix=".toml", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            load_lab(f.name)
    return text, list(notes), unseen
