"""wg-quick files, as people have them, read into a lab (the reading half of ``wgtrace lab import``).

``import_files([(node_or_None, path), …])`` reads each file (parse.py: every key, comment and
line number, every problem at once), its hooks as data (hooks.py, commands.py), matches the
files to one another by public key and infers the network around them (infer.py, underlay.py,
tunnel.py, checks.py). The result is lab-file data in the lab-file format, with notes (what
was not reproduced, what was assumed), findings (what does not fit between the files: each is
worth a look on the real machines) and wg-quick's own warnings; ``ImportResult.text()`` is the
lab file. A bad file raises one ``LabFileError`` with every problem of every file
(``FILE:LINE: sentence``) and nothing is built. No key of any file is kept, printed or written:
``lab up`` makes fresh ones, and every peer is named by its node.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabFileError

MAX_FILES = 400          # a lab holds at most 1000 nodes; a client brings its NAT router


@dataclass
class ImportResult:
    lab: dict                                   # lab-file data: parse_lab / lab_toml take it
    notes: list[str]
    findings: list[str]
    warnings: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)

    def text(self) -> str:
        from .write import lab_file_text
        return lab_file_text(self.lab, self.header)


def node_name(stem: str, used: set[str]) -> str:
    """A node name from a file name: lower-case words joined by '-', the last ones kept when it is
    too long (``wg0-client-alice`` -> ``client-alice``), never one already used."""
    words = [w for w in re.split(r"[^a-z0-9]+", stem.lower()) if w]
    while len("-".join(words)) > 14 and len(words) > 1:
        words.pop(0)
    name = "-".join(words)[:14].strip("-") or "node"
    if not name[0].isalpha():
        name = ("n" + name)[:14]
    base, n = name, 1
    while name in used:
        n += 1
        name = f"{base[:14 - len(str(n))]}{n}"
    used.add(name)
    return name


def _stems(stems: list[str]):
    """The file names bare FILE arguments name their nodes after, without the words they all
    begin with (``wg0-client-alice``, ``wg0-client-bob``: ``alice``, ``bob``)."""
    split = [re.split(r"[^A-Za-z0-9]+", s) for s in stems]
    common = 0
    while len(split) > 1 and all(len(w) > common + 1 and w[common] == split[0][common] for w in split):
        common += 1
    for words in split:
        yield "-".join(words[common:])


def _stem(shown: str, bare: list[str]) -> str:
    """What a bare FILE names its node after: its name, or its directory's when other bare files
    have the same name (``alice/wg0.conf bob/wg0.conf``, as ``lab export`` writes them)."""
    p = Path(shown)
    same = sum(1 for b in bare if Path(b).name == p.name) > 1
    parent = p.resolve().parent.name if same else ""
    return parent or p.name.removesuffix(".conf")


def import_files(pairs: list[tuple[str | None, Path]], name: str = "imported", lang: str = "en") -> ImportResult:
    from ..model.fields import LAB_NAME_RE, NAME_RE
    from .hooks import read_hooks
    from .infer import Member, infer
    from .parse import read_file
    from .words import Said, error
    from .write import header, render
    problems, warnings, files = [], [], []
    if not LAB_NAME_RE.match(name):
        problems.append(Said("wgquick_error.bad-lab-name", {"name": name}))
    if len(pairs) > MAX_FILES:
        problems.append(Said("wgquick_error.too-many-files", {"count": len(pairs), "limit": MAX_FILES}))
        pairs = []
    given = {n for n, _ in pairs if n}
    used: set[str] = set()
    for node, path in pairs:
        path = Path(path)
        shown = str(path)
        if node is not None:
            if not NAME_RE.match(node):
                problems.append(error("bad-node-name", shown, node=node))
            elif node in used:
                problems.append(error("node-twice", shown, node=node))
            used.add(node)
        f, errs, warns = read_file(path, shown)
        problems += errs
        warnings += warns
        if f is not None:
            files.append((node, f))
    owners: dict[str, str] = {}
    for node, f in files:
        k = f.interface.public_key
        if k and k in owners:
            problems.append(error("same-key", f.shown, f.interface.lines.get("PrivateKey"), other=owners[k]))
        elif k:
            owners[k] = f.shown
    if problems:
        n = len(problems)
        raise LabFileError(Said("wgquick_error.summary", {"count": n}).text(lang), [p.text(lang) for p in problems])
    taken = given | used
    stems = _stems([_stem(f.shown, [g.shown for n, g in files if n is None]) for node, f in files if node is None])
    members = [Member(node or node_name(next(stems), taken), f, read_hooks(f)) for node, f in files]
    got = infer(members, name)
    shown = [Path(f.shown).name for _, f in files]
    return ImportResult(render(got.lab, lang), [s.text(lang) for s in got.notes],
                        [s.text(lang) for s in got.findings], [w.text(lang) for w in warnings],
                        header(shown, got.notes, got.findings, lang))


def file_args(args: list[str]) -> list[tuple[str | None, Path]]:
    """``NODE=FILE`` or ``FILE`` as typed: a name before ``=`` (no ``/`` in it, and not a file of
    that whole name) names the node; a bare file names its node after itself."""
    out: list[tuple[str | None, Path]] = []
    for a in args:
        node, eq, path = a.partition("=")
        if eq and node and "/" not in node and path and not Path(a).exists():
            out.append((node, Path(path)))
        else:
            out.append((None, Path(a)))
    return out


def import_to(args: list[str], output: str | None, name: str | None, lang: str = "en") -> ImportResult:
    """``wgtrace lab import``: read the files, write the lab file to ``output`` (checked to load
    as it is written); the lab is named ``name``, else after ``output``, else "imported"."""
    from ..hosts.write import lab_name
    from ..model.parse import parse_lab
    from .words import Said
    if not args:
        raise LabFileError(Said("wgquick_cli.no-files").text(lang))
    r = import_files(file_args(args), lab_name(name, output, "imported"), lang)
    parse_lab(r.lab, output or "(the imported lab)")      # what it writes loads: a failure here is a bug
    if output:
        try:
            Path(output).write_text(r.text(), encoding="utf-8")
        except OSError as e:
            from ..errors import UsageError
            raise UsageError(Said("wgquick_cli.cannot-write", {"path": output, "why": e.strerror or str(e)}).text(lang)) from None
    return r
