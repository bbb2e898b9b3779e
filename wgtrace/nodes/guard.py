"""What wgtrace may run on someone's machine (a host over SSH, or the machine it runs on).

Without ``--fix`` only reads run: ``read_only`` says which commands are reads (anything else
makes a node's snapshot stale, and runs only when the operator says yes). WireGuard commands
pass ``wg_argv`` first: a dump is redacted on the machine itself, and nothing that prints a
private or preshared key (or makes one) runs at all.
"""
from __future__ import annotations

import re
from typing import Sequence

from .sshstate import redact_command

CHANGES = ("add", "del", "delete", "set", "replace", "change", "flush", "append", "insert", "create",
           "destroy", "reset", "rename", "import", "monitor", "-f", "--file")


def read_only(argv: Sequence[str]) -> bool:
    """Does this command only read? ``ip … show|get|list``, ``wg show``, ``iptables-save``,
    ``nft list`` (``-j`` for JSON), ``conntrack -L``, ``cat``, ``grep``, ``true``."""
    a = list(argv)
    if not a:
        return True
    if a[0] in ("iptables-save", "ip6tables-save", "cat", "true"):
        return True
    if a[0] == "grep":
        return all(not w.startswith("-") or w in ("-H", "-s", "-h") for w in a[1:])
    if a[0] == "conntrack":
        return len(a) > 1 and a[1] in ("-L", "--dump") and not any(w in ("-D", "-F", "-U", "-I") for w in a)
    if a[0] == "wg":
        return len(a) < 2 or a[1] == "show"
    if a[0] == "nft":           # nft reads its words as one command line: ';' would start another
        words = [w for w in a[1:] if w not in ("-j", "--json", "-a", "--handle", "-n", "-s", "--stateless")]
        return bool(words) and words[0] == "list" and not any(w in CHANGES for w in words) and \
            all(re.fullmatch(r"[A-Za-z0-9_.-]+", w) for w in words)
    if a[0] == "ip":
        return any(w in ("show", "get", "list", "ls") for w in a) and not any(w in CHANGES[:9] for w in a)
    return False


def wg_argv(argv: list[str]) -> list[str]:
    """WireGuard commands as they may run on a machine: a dump only redacted there; nothing that
    prints a private or preshared key (or makes one) is run at all."""
    if argv[:1] != ["wg"]:
        return argv
    sub = argv[1] if len(argv) > 1 else "show"
    if sub in ("showconf", "genkey", "genpsk") or \
            (sub == "show" and any(w in ("private-key", "preshared-keys") for w in argv)):
        raise PermissionError(f"'wg {sub}' prints keys; wgtrace never lets a key leave a host")
    if sub == "show" and argv[-1] == "dump":
        if argv != ["wg", "show", "all", "dump"]:
            raise PermissionError("WireGuard is read from hosts with 'wg show all dump' only (keys hidden)")
        return ["sh", "-c", redact_command("")]
    return argv
