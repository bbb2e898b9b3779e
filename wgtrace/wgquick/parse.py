"""A wg-quick file as typed records with line numbers, and every problem in it at once.

wg-quick reads a file twice, in two ways: its own keys (Address, DNS, MTU, Table, PreUp, PostUp,
PreDown, PostDown, SaveConfig) in ``[Interface]``, by name regardless of case, with everything
after ``#`` dropped except in a hook (bash reads that ``#`` itself); every other line goes to
``wg``, which drops comments and all whitespace, knows ``ListenPort``, ``FwMark`` and
``PrivateKey`` in ``[Interface]`` and ``PublicKey``, ``PresharedKey``, ``AllowedIPs``,
``Endpoint`` and ``PersistentKeepalive`` in ``[Peer]`` (again regardless of case), and refuses
anything else. This reads both ways at once, runs nothing and keeps no secret: the private key
becomes its public key on its line, a preshared key a digest.

Problems are ``Said`` records (``FILE:LINE: sentence``), all of them, never an exception; a file
that is too big, or not text, is refused before its lines are read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import keys as K
from . import values as V
from .words import Said, error, note, shorten

MAX_BYTES = 1 << 20
WGQUICK_NAME_RE = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}$")       # what wg-quick takes as a name
NAMES = ("Address", "DNS", "MTU", "Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig",
         "ListenPort", "FwMark", "PrivateKey",
         "PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive")
CANON = {n.lower(): n for n in NAMES}
IN_PEER = {"PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive"}
IN_INTERFACE = set(NAMES) - IN_PEER
HOOKS = ("PreUp", "PostUp", "PreDown", "PostDown")
WG_KEYS = {"ListenPort", "FwMark", "PrivateKey"} | IN_PEER            # read by wg: no whitespace at all
LISTS = {"Address", "DNS", "AllowedIPs"} | set(HOOKS)                  # several lines add up


@dataclass(frozen=True)
class Hook:
    phase: str              # PreUp, PostUp, PreDown, PostDown
    text: str               # as bash gets it (before %i is replaced)
    line: int


@dataclass
class Peer:
    line: int                                    # of its [Peer]
    label: str = ""                              # the name an installer wrote beside it, if any
    public_key: str | None = None
    key_line: int = 0
    psk: str | None = None                       # a digest of the preshared key, never the key
    allowed_ips: list[tuple[str, int]] = field(default_factory=list)      # (network, line)
    endpoint: tuple[str, int] | None = None      # (host as written, port)
    endpoint_line: int = 0
    keepalive: int | None = None


@dataclass
class Interface:
    line: int = 0
    public_key: str | None = None                # of its PrivateKey
    addresses: list[tuple[str, int]] = field(default_factory=list)        # (address/prefix, line)
    listen_port: int | None = None
    fwmark: int | None = None
    mtu: int | None = None
    table: str | None = None
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    save_config: bool = False
    hooks: list[Hook] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)                   # key -> the line that set it


@dataclass
class WgQuickFile:
    shown: str                  # the path as the user gave it
    iface: str                  # the interface, named as wg-quick names it
    interface: Interface
    peers: list[Peer]
    notes: list[Said] = field(default_factory=list)


def read_file(path: Path, shown: str | None = None) -> tuple[WgQuickFile | None, list[Said], list[Said]]:
    """(the file, its problems, warnings): bounded before it is read; wg-quick's warning for a
    file others can read (the file's and its directory's modes both let the world in)."""
    shown = shown or str(path)
    try:
        st = path.stat()
        if path.is_dir():
            return None, [error("not-a-file", shown)], []
        if st.st_size > MAX_BYTES:
            return None, [error("too-big", shown, size=st.st_size, limit=MAX_BYTES)], []
        with path.open("rb") as f:          # a pipe (<(ssh host cat …)) has no size: the read is bounded
            data = f.read(MAX_BYTES + 1)
        real = path.resolve()
        warnings = []
        if path.is_file() and st.st_mode & real.parent.stat().st_mode & 0o007:
            warnings.append(note("world-accessible", path=str(real)))
    except OSError as e:
        return None, [error("unreadable", shown, why=e.strerror or str(e))], []
    parsed, problems = parse_bytes(data, shown)
    return parsed, problems, warnings


def interface_name(shown: str) -> tuple[str, Said | None]:
    """The interface wg-quick makes for this file: the file's name without ``.conf`` when that is
    an interface name (a lab's are a little stricter: a letter first), else wg0."""
    from ..model.fields import IFACE_RE
    name = Path(shown).name
    stem = name[:-5] if name.endswith(".conf") else Path(shown).stem
    if WGQUICK_NAME_RE.match(stem) and IFACE_RE.match(stem):
        return stem, None
    return "wg0", note("iface-name", shown, name=name, stem=stem)


def parse_bytes(data: bytes, shown: str) -> tuple[WgQuickFile | None, list[Said]]:
    if len(data) > MAX_BYTES:
        return None, [error("too-big", shown, size=len(data), limit=MAX_BYTES)]
    nul = data.find(b"\0")
    if nul >= 0:
        return None, [error("nul-byte", shown, data.count(b"\n", 0, nul) + 1, byte=nul)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, [error("not-utf8", shown, data.count(b"\n", 0, e.start) + 1, byte=e.start)]
    return _Reader(shown).read(text)


class _Reader:
    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.problems: list[Said] = []
        self.notes: list[Said] = []
        self.iface = Interface()
        self.peers: list[Peer] = []
        self.section: str | None = None
        self.seen: dict[tuple[int, str], int] = {}       # (section id, key) -> first line
        self.comments: list[tuple[int, str]] = []        # the comments just before a [Peer]

    def bad(self, what: str, line: int, **params) -> None:
        self.problems.append(error(what, self.shown, line, **params))

    def read(self, text: str) -> tuple[WgQuickFile | None, list[Said]]:
        if text.startswith("\ufeff"):
            self.bad("bom", 1)
            text = text[1:]
        for n, raw in enumerate(text.split("\n"), 1):
            self.line(n, raw)
        if not self.iface.line:
            self.problems.append(error("no-interface", self.shown))
        self.check_peers()
        self.problems.sort(key=lambda s: s.line or 0)
        name, why = interface_name(self.shown)
        if why:
            self.notes.append(why)
        f = WgQuickFile(self.shown, name, self.iface, self.peers, self.notes)
        return (None if self.problems else f), self.problems

    def line(self, n: int, raw: str) -> None:
        stripped, hash_, comment = raw.partition("#")
        if not stripped.strip():
            if hash_:
                self.comments.append((n, comment.strip()))
            elif not raw.strip():
                self.comments.clear()        # a blank line ends the comments that name a peer
            return
        key_part, eq, value_part = stripped.partition("=")
        key = key_part.strip()
        if key.startswith("["):
            self.header(n, "".join(stripped.split()), comment.strip() if hash_ else "")
            return
        if not eq:
            self.bad("not-key-value", n, text=shorten(stripped, 60))
            return
        name = CANON.get(key.lower())
        if self.section == "?":
            return                                # under a section already refused
        if self.section is None:
            self.bad("before-section", n, key=shorten(key, 40))
        elif name is None:
            self.bad("unknown-key", n, key=shorten(key, 40), section=self.section,
                     known=", ".join(sorted(IN_PEER if self.section == "Peer" else IN_INTERFACE)))
        elif (self.section == "Peer") != (name in IN_PEER):
            self.bad("wrong-section", n, key=name, section=self.section,
                     belongs="Peer" if name in IN_PEER else "Interface")
        else:
            if name in HOOKS:
                value = raw.partition("=")[2].strip()          # bash sees the comment itself
            elif name in WG_KEYS and name != "AllowedIPs":   # AllowedIPs: values.py says where spaces were
                value = "".join(value_part.split())
            else:
                value = value_part.strip()
            self.repeated(n, name)
            try:
                (self.peer_key if self.section == "Peer" else self.interface_key)(n, name, value)
            except V.Bad as b:
                self.bad(b.key, n, key=name, **b.params)
        self.comments.clear()

    def header(self, n: int, header: str, same_line: str) -> None:
        low = header.lower()
        if low == "[interface]":
            if self.iface.line:
                self.notes.append(note("second-interface", self.shown, n, first=self.iface.line))
            else:
                self.iface.line = n
            self.section = "Interface"
        elif low == "[peer]":
            before = [c for _, c in self.comments if not re.match(r"^#*\s*end", c, re.I)]
            self.peers.append(Peer(n, label=_label(same_line or (before[-1] if before else ""))))
            self.section = "Peer"
        else:
            self.bad("unknown-section", n, section=shorten(header, 40))
            self.section = "?"
        self.comments.clear()

    def repeated(self, n: int, name: str) -> None:
        if name in LISTS:
            return
        sid = len(self.peers) if self.section == "Peer" else 0
        first = self.seen.setdefault((sid, name), n)
        if first != n:
            self.notes.append(note("repeated-key", self.shown, n, key=name, first=first))

    def interface_key(self, n: int, name: str, value: str) -> None:
        i = self.iface
        i.lines[name] = n
        if name == "Address":
            i.addresses += [(V.address(w), n) for w in V.words(value)]
        elif name == "DNS":
            servers, search = V.dns(value)
            i.dns += servers
            i.dns_search += search
        elif name in HOOKS:
            if value:
                i.hooks.append(Hook(name, value, n))
        elif name == "PrivateKey":
            raw = K.key_bytes(value)
            if raw is None:
                raise V.Bad("bad-key")
            i.public_key = K.public_of(raw)
        elif name == "ListenPort":
            i.listen_port = V.port(value) or None
        elif name == "FwMark":
            i.fwmark = V.fwmark(value) or None
        elif name == "MTU":
            i.mtu = V.mtu(value)
        elif name == "Table":
            i.table = V.table(value)
        elif name == "SaveConfig":
            i.save_config = V.boolean(value)

    def peer_key(self, n: int, name: str, value: str) -> None:
        p = self.peers[-1]
        if not p.label and not p.key_line and not p.allowed_ips and self.comments:
            p.label = _label(self.comments[0][1])          # Algo writes the name after [Peer]
        if name == "PublicKey":
            p.key_line = n                        # a bad key is reported once, as a bad key
        if name in ("PublicKey", "PresharedKey"):
            raw = K.key_bytes(value)
            if raw is None:
                raise V.Bad("bad-key")
            if name == "PublicKey":
                p.public_key, p.key_line = value, n
            else:
                p.psk = K.digest(raw)
        elif name == "AllowedIPs":
            for net, host_bits in V.allowed_ips(value):
                p.allowed_ips.append((net, n))
                if host_bits:
                    self.notes.append(note("host-bits", self.shown, n, network=net))
        elif name == "Endpoint":
            p.endpoint, p.endpoint_line = V.endpoint(value), n
        elif name == "PersistentKeepalive":
            p.keepalive = V.keepalive(value) or None

    def check_peers(self) -> None:
        first: dict[str, int] = {}
        for p in self.peers:
            if p.public_key is None:
                if not p.key_line:
                    self.bad("peer-no-key", p.line)
            elif p.public_key == self.iface.public_key:
                self.bad("own-key", p.key_line)
            elif p.public_key in first:
                self.bad("two-peers-one-key", p.key_line, first=first[p.public_key])
            else:
                first[p.public_key] = p.key_line


def _label(comment: str) -> str:
    """The name an installer writes in the comment next to a peer: ``### Client alice``
    (angristan), ``BEGIN_PEER alice`` (Nyr), ``### begin alice ###`` (PiVPN), ``Client: alice (3)``
    (wg-easy), ``alice`` (Algo)."""
    text = re.sub(r"^[#\s]+|[#\s]+$", "", comment)
    text = re.sub(r"^(client:?|begin_peer|begin|peer:?)\s+", "", text, flags=re.I)
    word = text.split()[0] if text.split() else ""
    return shorten(word, 30) if re.match(r"^[\w.@+-]+$", word) else ""
