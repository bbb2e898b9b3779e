"""The hosts file (TOML): which machines to reach over SSH, checked like a lab file (an Ansible
inventory is read by hosts/inventory.py into the same ``HostsFile``).

A hosts file may come from anybody and ends up in ssh's command line, so every field is checked
to be exactly what it claims: a host name as a lab node name, an ssh target as plain
``user@host`` or an alias (never an option, never shell), a port number, interface names.
It holds no secrets: there is no place for a password or a key, and keys that look like one are
refused with a pointer to ssh's own ways (an agent, IdentityFile in ssh_config).
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabFileError
from ..model import fields as F
from .sshargs import check_address

TOP_KEYS = {"ssh_config", "ignore", "hosts", "description"}
HOST_KEYS = {"ssh", "sudo", "port", "ignore", "description", "management", "local"}
# keys someone might reach for to put a secret in: refused with a sentence of their own
SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "private", "identity", "token", "key")
TARGET_RE = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}@)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")
MAX_BYTES = 256 * 1024
MAX_HOSTS = 200


@dataclass(frozen=True)
class Host:
    name: str                 # as the host is called in wgtrace (a node name)
    ssh: str                  # user@host or an alias, as ssh takes it
    sudo: bool = False        # privileged commands run with `sudo -n`
    port: int | None = None
    ignore: tuple[str, ...] = ()     # interfaces left out of the picture (a management network)
    management: bool = True   # the interface it is logged into is management unless it carries the path
    local: bool = False       # the machine wgtrace runs on (no SSH)
    ssh_args: tuple[str, ...] = ()   # more words for ssh (an inventory's, checked: hosts/sshargs.py)


@dataclass(frozen=True)
class HostsFile:
    path: str
    hosts: dict[str, Host]
    ssh_config: str | None = None
    description: str = ""
    groups: dict[str, list[str]] = field(default_factory=dict)   # an inventory's groups: name -> hosts

    @property
    def name(self) -> str:
        """A lab name for the network of these hosts (lower-case letters and digits, at most 12)."""
        stem = re.sub(r"[^a-z0-9]", "", Path(self.path).stem.lower())
        stem = stem if stem[:1].isalpha() else "hosts" + stem
        return stem[:12] or "hosts"


def _secret_key(k: str) -> bool:
    low = k.lower()
    return any(w in low for w in SECRET_WORDS)


def _ifaces(errs: F.Errors, key: str, value) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        errs.add(key, 'must be a list of interface names, like ["mgmt0"]')
        return ()
    return tuple(v for i, v in enumerate(value) if F.iface(errs, f"{key}[{i}]", v))


def _keys(errs: F.Errors, key: str, d: dict, allowed: set[str]) -> None:
    for k in d:
        if k in allowed:
            continue
        if _secret_key(k):
            errs.add(f"{key}.{k}" if key else k, "a hosts file holds no secrets: wgtrace logs in with ssh keys "
                     "(an ssh agent, or IdentityFile in the ssh_config file), never with a password or key here")
        else:
            errs.add(f"{key}.{k}" if key else k, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def _target(errs: F.Errors, key: str, value) -> str | None:
    if not isinstance(value, str) or not value:
        errs.add(key, 'required: how ssh reaches the host, like "root@192.0.2.10" or an alias from ssh_config')
        return None
    if value.startswith("-"):
        errs.add(key, f"{value!r} starts with '-': an ssh target is user@host or an alias, never an option")
        return None
    if ":" in value.split("@")[0] and "@" in value:
        errs.add(key, "user:password@host: a hosts file holds no secrets; use ssh keys")
        return None
    user, _, host = value.rpartition("@")
    if ":" in host and (not user or re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}", user)):
        return value if check_address(errs, key, host) else None      # an IPv6 address
    if not TARGET_RE.match(value):
        errs.add(key, f"{value!r} is not a plain ssh target: user@host or an alias (letters, digits, '.', '_', '-'; "
                      f"no spaces, options or shell characters)")
        return None
    return value if check_address(errs, key, host) else None


def _config(errs: F.Errors, value, base: Path) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(ord(c) < 32 for c in value) or value.startswith("-"):
        errs.add("ssh_config", "must be the path of an ssh client configuration file")
        return None
    p = Path(os.path.expanduser(value))
    if not p.is_absolute():
        p = base / p
    if not p.is_file():
        errs.add("ssh_config", f"{value!r}: no such file")
        return None
    return str(p)


def parse_hosts(data: dict, path: str) -> HostsFile:
    errs = F.Errors(path)
    _keys(errs, "", data, TOP_KEYS)
    config = _config(errs, data.get("ssh_config"), Path(path).resolve().parent)
    ignore_all = _ifaces(errs, "ignore", data.get("ignore"))
    raw = data.get("hosts")
    if not isinstance(raw, dict) or not raw:
        errs.add("hosts", "required: at least one [hosts.NAME] table with ssh = \"user@host\"")
        raw = {}
    if len(raw) > MAX_HOSTS:
        errs.add("hosts", f"{len(raw)} hosts; a hosts file may have at most {MAX_HOSTS}")
        raw = {}
    hosts: dict[str, Host] = {}
    targets: dict[tuple, str] = {}
    local_seen: list[str] = []
    for name, h in raw.items():
        key = f"hosts.{name}"
        bad_name = not F.NAME_RE.match(name)
        if bad_name:
            errs.add(key, "a host name is lower-case letters, digits and '-', starting with a letter, "
                          "at most 14 characters")
        if not isinstance(h, dict):
            errs.add(key, 'must be a table with ssh = "user@host"')
            continue
        _keys(errs, key, h, HOST_KEYS)
        local = h.get("local", False)
        if not isinstance(local, bool):
            errs.add(f"{key}.local", "is true or false (true: the machine wgtrace runs on, reached without SSH)")
            local = False
        if local:
            for k in ("ssh", "sudo", "port"):
                if k in h:
                    errs.add(f"{key}.{k}", "a local host is this machine: it is not reached over SSH (leave out ssh, "
                                           "sudo and port, or local)")
            if any(x.local for x in hosts.values()) or local_seen:
                errs.add(f"{key}.local", "only one host can be the machine wgtrace runs on")
            local_seen.append(name)
            if not bad_name:
                hosts[name] = Host(name, "", False, None, tuple(dict.fromkeys(
                    ignore_all + _ifaces(errs, f"{key}.ignore", h.get("ignore")))), True, True)
            F.text(errs, f"{key}.description", h.get("description"))
            continue
        target = _target(errs, f"{key}.ssh", h.get("ssh"))
        sudo = h.get("sudo", False)
        if not isinstance(sudo, bool):
            errs.add(f"{key}.sudo", "is true or false")
            sudo = False
        port = F.integer(errs, f"{key}.port", h["port"], 1, 65535, "a TCP port") if "port" in h else None
        F.text(errs, f"{key}.description", h.get("description"))
        ignore = ignore_all + _ifaces(errs, f"{key}.ignore", h.get("ignore"))
        mgmt = h.get("management", True)
        if not isinstance(mgmt, bool):
            errs.add(f"{key}.management", "is true or false (false: the address wgtrace logs into is on the path)")
            mgmt = True
        if target is None or bad_name:
            continue
        if (target, port) in targets:
            errs.add(f"{key}.ssh", f"{target} is also host {targets[(target, port)]!r}: one host, one name")
            continue
        targets[(target, port)] = name
        hosts[name] = Host(name, target, sudo, port, tuple(dict.fromkeys(ignore)), mgmt)
    description = F.text(errs, "description", data.get("description"))
    if errs.items:
        n = len(errs.items)
        raise LabFileError(f"{path}: {n} error{'s' if n > 1 else ''} in the hosts file", errs.items)
    return HostsFile(path, hosts, config, description)


def load_hosts(path: str) -> HostsFile:
    """Read and check a hosts file: bounded, UTF-8, TOML, every field what it says."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise LabFileError(f"{path}: a hosts file may be at most {MAX_BYTES // 1024} KB.")
        raw = p.read_bytes()
    except OSError as e:
        raise LabFileError(f"{path}: cannot read the hosts file ({e.strerror}).") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LabFileError(f"{path}: not a text file (not UTF-8 at byte {e.start}).") from None
    from .inventory import is_inventory, parse_inventory
    if is_inventory(path, text):
        try:
            hosts, groups = parse_inventory(text, path)
            return HostsFile(path, {n: Host(**h) for n, h in hosts.items()}, None, "", groups)
        except LabFileError as e:
            if e.message.startswith(path):
                raise
            raise LabFileError(f"{path}: {e.message}", e.details) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LabFileError(f"{path}: not valid TOML: {e}", [f"{path}: {e}"]) from None
    return parse_hosts(data, path)
