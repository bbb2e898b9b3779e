"""PreUp/PostUp/PreDown/PostDown lines as data: what a lab file can say, and why the rest is not reproduced.

wg-quick replaces ``%i`` with the interface's name and hands each hook line to bash. Nothing
here runs a line: it is split as bash splits the simple lines installers write (``shlex``, with
``;`` ``&&`` ``||`` ``|`` ``&`` and redirections as tokens of their own, ``$(…)`` kept whole),
variables set earlier on the same line are put in, and each command is read by commands.py.
``iptables -C RULE || iptables -I RULE`` (add unless present) is the rule; ``CMD || true`` is CMD.
Down hooks run when the interface goes down, which a lab never does: those that undo what the
up hooks did are counted, any other is listed. Every command not reproduced gets one sentence.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from . import commands as C
from .parse import WgQuickFile
from .words import Said, note, reason, shorten

SEPARATORS = {";", "&", "&&", "||", "|", "|&", "\n"}
REDIRECTS = {">", ">>", "<", "&>", ">&", "&>>", ">|", "<>", "<<<"}
VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)|(.))")
FD_RE = re.compile(r"(^|\s)([0-9])(?=>)")              # 2>/dev/null: the digit names a stream
FD_WORD = re.compile(r"^__fd[0-9]__$")
ASSIGN_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
DOWN = ("PreDown", "PostDown")


@dataclass
class Command:
    words: list[str] = field(default_factory=list)
    redirects: list[tuple[str, str]] = field(default_factory=list)     # (operator, target)
    nested: bool = False                # holds a $(…), `…` or a ( … ) subshell
    background: bool = False            # ends in &
    after: str = ""                     # the operator that joins it to the previous command

    @property
    def text(self) -> str:
        words = " ".join(self.words) if self.nested else shlex.join(self.words)
        return " ".join([words] + [f"{op} {t}" for op, t in self.redirects])


@dataclass
class HookReading:
    actions: list[C.Action] = field(default_factory=list)
    skipped: list[Said] = field(default_factory=list)
    undo: list[int] = field(default_factory=list)        # lines of down hooks that only undo


def read_hooks(f: WgQuickFile) -> HookReading:
    out = HookReading()
    chains: set[str] = set()            # chains the hooks create (-N): a lab cannot
    for h in f.interface.hooks:
        text = h.text.replace("%i", f.iface)
        try:
            cmds = split(text)
        except ValueError:
            out.skipped.append(note("hook-not-reproduced", f.shown, h.line, phase=h.phase,
                                    command=shorten(text), why=reason("quotes")))
            continue
        variables: dict[str, str] = {}
        for group in _groups(cmds):
            _read_group(f, h.phase, h.line, group, variables, chains, out)
    return out


def split(text: str) -> list[Command]:
    """Commands and the operators between them; a ``$(…)`` or ``( … )`` stays inside its command."""
    lex = shlex.shlex(FD_RE.sub(r"\1__fd\2__ ", text), posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    cmds, cur, depth, pending, tick = [], Command(), 0, None, False
    for tok in lex:
        if "`" in tok or tick:
            cur.nested = True
            tick ^= tok.count("`") % 2 == 1             # inside `…` until the closing one
            cur.words.append(tok)
            continue
        if tok in ("(", ")") or (depth and set(tok) <= set("();<>|&")):
            depth += tok.count("(") - tok.count(")")
            cur.nested = True
            cur.words.append(tok)
            continue
        if depth:
            cur.words.append(tok)
        elif pending is not None:
            cur.redirects.append((pending, tok))
            pending = None
        elif tok in REDIRECTS:
            if cur.words and FD_WORD.match(cur.words[-1]):
                cur.words.pop()
            pending = tok
        elif tok in SEPARATORS or set(tok) <= set(";&|"):
            cur.background = tok == "&"
            cmds.append(cur)
            cur = Command(after=tok)
        else:
            cur.words.append(tok)
    if depth or tick or pending is not None:
        raise ValueError("unbalanced")
    cmds.append(cur)
    return [c for c in cmds if c.words or c.redirects]


def _groups(cmds: list[Command]) -> list[list[Command]]:
    """Runs joined by ``||``, ``|`` or ``&`` (read together); ``;`` and ``&&`` start a new run
    (a lab's commands all succeed, so ``&&`` is a sequence)."""
    groups: list[list[Command]] = []
    for c in cmds:
        if groups and c.after in ("||", "|", "|&"):
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups


def _read_group(f, phase, line, group, variables, chains, out: HookReading) -> None:
    def skip(cmd_text: str, why: str, **params) -> None:
        if phase in DOWN:                   # whatever it is, it runs only when the interface goes down
            why, params = "down", {}
        out.skipped.append(note("hook-not-reproduced", f.shown, line, phase=phase, command=shorten(cmd_text),
                                why=reason(why), **params))

    text = " ".join(("" if i == 0 else c.after + " ") + c.text for i, c in enumerate(group))
    if any(c.after in ("|", "|&") for c in group[1:]):
        return skip(text, "pipe")
    if any(c.background for c in group):
        return skip(text, "background")
    if len(group) > 1:
        first, *rest = group
        if len(rest) == 1 and rest[0].words in (["true"], [":"]):
            group = [first]                                     # CMD || true: CMD
        elif len(rest) == 1 and C.is_check_then_add(first.words, rest[0].words):
            group = rest                                        # iptables -C R || iptables -I R
        else:
            return skip(text, "or-list")
    cmd = group[0]
    if cmd.nested:
        return skip(cmd.text, "substitution")
    words = list(cmd.words)
    while words and (m := ASSIGN_RE.match(words[0])):
        words.pop(0)
        if not words:
            variables[m.group(1)] = m.group(2)                # WAN=eth0; iptables … -o $WAN
    words, missing = _expand(words, variables)
    if missing:
        return skip(cmd.text, "variable", variable=missing)
    if not words:
        return
    got = C.read_command(words, cmd.redirects, phase in DOWN, f.iface, chains)
    if isinstance(got, C.Undo):
        out.undo.append(line)
    elif isinstance(got, C.Skip):
        skip(shlex.join(words), got.why, **got.params)
    else:
        out.actions += [C.Action(a.kind, a.value, line, phase) for a in got]


def _expand(words: list[str], variables: dict[str, str]) -> tuple[list[str], str | None]:
    """``$NAME`` and ``${NAME}`` from assignments earlier on the line; the first other one, if any."""
    missing: list[str] = []

    def put(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name and name in variables:
            return variables[name]
        missing.append(name or m.group(0))
        return m.group(0)
    out = [VAR_RE.sub(put, w) for w in words]
    return out, (missing[0] if missing else None)
