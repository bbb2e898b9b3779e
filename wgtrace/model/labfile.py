"""Load a lab file into the model, in named steps: read -> parse TOML -> expand -> parse -> validate.

Each step reports every problem it finds with the file and the key it concerns, raised together
as one ``LabFileError``, so a user fixes a file in one pass. The file is bounded (size, nodes,
links) before anything costly is done with it: a lab file is data from anybody.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from ..errors import LabFileError
from . import data_dir
from .expand import ExpandError, expand
from .fields import IFACE_RE, LAB_NAME_RE, NAME_RE  # noqa: F401  (re-exported: names of things)
from .lab import Lab
from .parse import parse_lab

LABS_DIR = data_dir("labs")
MAX_BYTES = 2 * 1024 * 1024          # a lab file; repetition (``each``) makes big labs from small files
MAX_NODES = 1000
MAX_LINKS = 2000


def find_lab(name_or_path: str) -> Path:
    """A lab given as a name in labs/ (``seed``) or as a path to a .toml file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or "/" in name_or_path:
        return p
    return LABS_DIR / f"{name_or_path}.toml"


def available_labs() -> list[str]:
    return sorted(p.stem for p in LABS_DIR.glob("*.toml") if not p.name.endswith(".faults.toml"))


def read_lab_file(path: Path) -> dict:
    """The TOML data of a lab file: bounded, UTF-8, valid TOML, or one clear error."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise LabFileError(f"{path}: {size / 1048576:.1f} MB; a lab file may be at most "
                               f"{MAX_BYTES // 1048576} MB (use `each` to repeat nodes).")
        raw = path.read_bytes()
    except OSError as e:
        raise LabFileError(f"{path}: cannot read it ({e.strerror}).") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LabFileError(f"{path}: not a text file (not UTF-8 at byte {e.start}).") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LabFileError(f"{path}: not valid TOML: {e}", [f"{path}: {e}"]) from None


def load_lab(name_or_path: str, rename: str | None = None, params: dict | None = None) -> Lab:
    """Load and check a lab file; ``rename`` runs it under another name (side by side), ``params``
    sets its parameters (``--set spokes=50``)."""
    path = find_lab(name_or_path)
    if not path.is_file():
        known = ", ".join(available_labs()) or "none"
        raise LabFileError(f"unknown lab {name_or_path!r} (known labs: {known})", [])
    data = read_lab_file(path)
    if rename is not None:
        data = {**data, "name": rename}
    try:
        data, used = expand(data, params)
    except ExpandError as e:
        raise LabFileError(f"{path}: 1 error in the lab file", [f"{path}: {e.key}: {e.what}"]) from None
    for key, limit in (("nodes", MAX_NODES), ("links", MAX_LINKS)):
        n = len(data.get(key) or ())
        if n > limit:
            raise LabFileError(f"{path}: {key}: {n} {key}; a lab may have at most {limit}.")
    return parse_lab(data, str(path), used)
