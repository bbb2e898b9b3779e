"""The ssh words an inventory may hand to ssh (``ansible_ssh_common_args``, ``…extra_args``), checked.

They end up in ssh's command line, as separate words (never through a shell), so they are read as
what they claim to be: a few flags (``-4 -6 -C -A -q``, ``-J HOST``, ``-i FILE``, ``-l USER``,
``-p PORT``) and ``-o Option=value`` for options that say how to reach and trust a host. An
option that makes ssh run a command (``ProxyCommand``, ``LocalCommand``, ``KnownHostsCommand``,
``Match exec``, a PKCS#11 or security-key library…) is refused with a sentence of its own, and so
are the options of the connection wgtrace keeps itself (``ControlMaster``, ``BatchMode``…).
"""
from __future__ import annotations

import re
import shlex

from ..model import fields as F

FLAGS = {"-4", "-6", "-C", "-A", "-a", "-q", "-x"}
WITH_VALUE = {"-J", "-i", "-l", "-p", "-o"}
OPTIONS = {o.lower() for o in (
    "StrictHostKeyChecking", "UserKnownHostsFile", "GlobalKnownHostsFile", "IdentityFile", "IdentitiesOnly",
    "CertificateFile", "ProxyJump", "Port", "User", "Hostname", "HostKeyAlias", "ConnectTimeout",
    "ConnectionAttempts", "ServerAliveInterval", "ServerAliveCountMax", "TCPKeepAlive", "Compression", "Ciphers",
    "MACs", "KexAlgorithms", "HostKeyAlgorithms", "PubkeyAcceptedKeyTypes", "PubkeyAcceptedAlgorithms",
    "CheckHostIP", "AddressFamily", "BindAddress", "BindInterface", "PreferredAuthentications",
    "PubkeyAuthentication", "PasswordAuthentication", "KbdInteractiveAuthentication", "GSSAPIAuthentication",
    "NumberOfPasswordPrompts", "ForwardAgent", "LogLevel", "UpdateHostKeys", "VerifyHostKeyDNS",
    "HashKnownHosts", "IPQoS", "RekeyLimit")}
RUNS = {o.lower() for o in ("ProxyCommand", "LocalCommand", "PermitLocalCommand", "KnownHostsCommand",
                            "RemoteCommand", "Match", "PKCS11Provider", "SecurityKeyProvider", "Include",
                            "ProxyUseFdpass", "SmartcardDevice")}
OURS = {o.lower() for o in ("ControlMaster", "ControlPath", "ControlPersist", "BatchMode", "RequestTTY",
                            "SessionType", "StdinNull", "ForkAfterAuthentication")}


def check_ssh_words(errs: F.Errors, key: str, text: str) -> list[str]:
    """The words, if every one is what it claims to be; else [] and the first problem added to ``errs``
    (one sentence for the variable: what follows a refused word is not read as words at all)."""
    try:
        words = shlex.split(text)
    except ValueError:
        errs.add(key, "unbalanced quotes")
        return []
    out, i = [], 0
    while i < len(words):
        w = words[i]
        if w in FLAGS:
            out.append(w)
            i += 1
            continue
        flag, value = (w[:2], w[2:]) if w[:2] in WITH_VALUE and len(w) > 2 else (w, None)
        if flag not in WITH_VALUE:
            errs.add(key, f"{w!r}: not an ssh word wgtrace passes on (it takes -o Option=value, -J, -i, -l, -p, "
                          f"-4, -6, -C, -A, -q)")
            return []
        if value is None:
            if i + 1 >= len(words):
                errs.add(key, f"{w} needs a value")
                return []
            value = words[i + 1]
            i += 1
        i += 1
        if value.startswith("-") or any(ord(c) < 32 for c in value):
            errs.add(key, f"{flag} {value!r}: a value, not another option")
            return []
        if flag == "-o":
            name = value.replace("=", " ", 1).split()[0].lower() if value.strip() else ""
            if name in RUNS:
                errs.add(key, f"-o {value!r}: {name} would make ssh run a command or load code on this machine; "
                              f"wgtrace never passes that on (put a jump host as -J or ProxyJump)")
                return []
            if name in OURS:
                errs.add(key, f"-o {value!r}: wgtrace keeps its own connection ({name}); leave it out")
                return []
            if name not in OPTIONS:
                errs.add(key, f"-o {value!r}: not an ssh option wgtrace passes on")
                return []
        out += [flag, value]
    return out


def check_address(errs: F.Errors, key: str, host: str) -> bool:
    """A host part that looks like an address must be one (10.0.0.300 is not); names pass."""
    import ipaddress
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in bare or re.fullmatch(r"[0-9.]+", bare):
        try:
            ipaddress.ip_address(bare)
        except ValueError:
            errs.add(key, f"{host!r} is not an address (nor a host name)")
            return False
        return True
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}", host):
        errs.add(key, f"{host!r} is not a plain host name or address (letters, digits, '.', '_', '-')")
        return False
    return True
