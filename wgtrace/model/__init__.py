"""What a network is, as data: a lab file read (labfile, expand), checked field by field (parse,
fields, validate) into small typed records (lab), the commands each stage types (commands), fault
catalogues (faults), and the lab-file writer (tomlout). Nothing here touches the kernel."""
from __future__ import annotations

import sys
from pathlib import Path


def data_dir(name: str) -> Path:
    """labs/ or lessons/: at the top of the repository, or under <prefix>/share/wgtrace when installed."""
    here = Path(__file__).resolve().parent.parent.parent / name
    return here if here.is_dir() else Path(sys.prefix) / "share" / "wgtrace" / name
