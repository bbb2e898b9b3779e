"""An Ansible inventory as a hosts file: operators with many servers already have one.

INI (``[group]`` host lines with ``key=value`` words, ``[group:vars]``, ``[group:children]``) or
YAML (``all: {hosts, vars, children}``), read as data, never run. Of each host wgtrace takes
``ansible_host``, ``ansible_user``, ``ansible_port``, ``ansible_become`` (``sudo -n``),
``ansible_connection`` (``local``: the machine wgtrace runs on) and the ssh words of
``ansible_ssh_common_args`` / ``ansible_ssh_extra_args``, group variables inherited as Ansible
inherits them (a host's own win). Variables of playbooks (anything not ``ansible_`` or
``wgtrace_``) are left alone; an ``ansible_`` key wgtrace does not know, a password, an ssh word
that would run a command (``ProxyCommand``, ``LocalCommand``…), an address that is not one, a
name twice: one sentence each, every problem at once, and nothing is contacted.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from ..errors import LabFileError
from ..model import fields as F
from .sshargs import check_address, check_ssh_words

USED = {"ansible_host", "ansible_user", "ansible_port", "ansible_become", "ansible_ssh_common_args",
        "ansible_ssh_extra_args", "ansible_connection", "ansible_become_method", "ansible_become_user",
        "ansible_ssh_private_key_file", "ansible_python_interpreter", "ansible_ssh_host", "ansible_ssh_user",
        "ansible_ssh_port", "wgtrace_ignore", "wgtrace_management", "ansible_shell_type"}
SECRETS = ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password", "ansible_become_pass",
           "ansible_become_password", "ansible_sudo_pass")
RANGE = re.compile(r"\[[0-9a-z]+:[0-9a-z]+\]")


def is_inventory(path: str, raw: str) -> bool:
    """A file that is not a wgtrace hosts file (TOML with [hosts.NAME]) is read as an inventory."""
    if Path(path).suffix.lower() in (".yml", ".yaml", ".ini", ".cfg"):
        return True
    if Path(path).suffix.lower() == ".toml":
        return False
    return not re.search(r"^\s*\[hosts\.", raw, re.M)


def _truth(v) -> bool | None:
    if isinstance(v, bool):
        return v
    return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(str(v).strip().lower())


# --- reading the two formats into groups: name -> {hosts: {host: vars}, vars, children} ------------

def _ini(text: str, errs: F.Errors) -> dict:
    groups: dict[str, dict] = {"all": {"hosts": {}, "vars": {}, "children": []}}
    group, kind = "ungrouped", "hosts"
    groups[group] = {"hosts": {}, "vars": {}, "children": []}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            head = line[1:-1].strip()
            group, _, kind = head.partition(":")
            kind = kind or "hosts"
            if kind not in ("hosts", "vars", "children") or not group:
                errs.add(f"line {n}", f"[{head}]: a section is [group], [group:vars] or [group:children]")
                group, kind = "ungrouped", "hosts"
            groups.setdefault(group, {"hosts": {}, "vars": {}, "children": []})
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            errs.add(f"line {n}", "unbalanced quotes")
            continue
        if not words:
            continue
        g = groups[group]
        if kind == "children":
            g["children"].append(words[0])
            continue
        if kind == "vars":
            key, eq, value = line.partition("=")
            if not eq:
                errs.add(f"line {n}", f"{line!r}: a variable is key=value")
                continue
            g["vars"][key.strip()] = _unquote(value.strip())
            continue
        host, pairs = words[0], {}
        for w in words[1:]:
            key, eq, value = w.partition("=")
            if not eq:
                errs.add(f"line {n}", f"{w!r}: after the host name come key=value words")
                continue
            pairs[key] = value
        if host in g["hosts"]:
            errs.add(f"line {n}", f"{host} appears twice in [{group}]: one line per host")
        g["hosts"][host] = pairs
    groups["all"]["children"] += [g for g in groups if g != "all"]
    return groups


def _unquote(v: str) -> str:
    try:
        words = shlex.split(v)
    except ValueError:
        return v
    return words[0] if len(words) == 1 else v


def _yaml(text: str, errs: F.Errors) -> dict:
    import yaml
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise LabFileError(f"not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise LabFileError("a YAML inventory is a mapping of groups, like all: {hosts: {...}}")
    groups: dict[str, dict] = {}

    def walk(name: str, g, where: str) -> None:
        if g is None:
            g = {}
        if not isinstance(g, dict):
            errs.add(where, "a group is a mapping of hosts, vars and children")
            return
        for k in g:
            if k not in ("hosts", "vars", "children"):
                errs.add(f"{where}.{k}", "unknown key (a group has hosts, vars and children)")
        mine = groups.setdefault(name, {"hosts": {}, "vars": {}, "children": []})
        hosts = g.get("hosts") or {}
        if not isinstance(hosts, dict):
            errs.add(f"{where}.hosts", "a mapping of host names to their variables")
            hosts = {}
        for h, hv in hosts.items():
            if hv is not None and not isinstance(hv, dict):
                errs.add(f"{where}.hosts.{h}", "a host's variables are a mapping")
                hv = {}
            mine["hosts"][str(h)] = {str(k): v for k, v in (hv or {}).items()}
        if isinstance(g.get("vars"), dict):
            mine["vars"].update({str(k): v for k, v in g["vars"].items()})
        for child, cg in (g.get("children") or {}).items():
            mine["children"].append(str(child))
            walk(str(child), cg, f"{where}.children.{child}")
    for name, g in data.items():
        walk(str(name), g, str(name))
    return groups


# --- from groups to hosts -------------------------------------------------------------------------

def _host_vars(groups: dict) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """Every host's variables (parents' group vars first, a child's over them, the host's own last),
    and each group's hosts."""
    parents: dict[str, list[str]] = {}
    for g, d in groups.items():
        for c in d["children"]:
            parents.setdefault(c, []).append(g)

    def chain(g: str, seen=()) -> list[str]:
        if g in seen:
            return []
        out = []
        for p in parents.get(g, []):
            out += chain(p, seen + (g,))
        return out + [g]
    hosts: dict[str, dict] = {}
    members: dict[str, list[str]] = {}
    for g in groups:
        for h, own in groups[g]["hosts"].items():
            merged = dict(hosts.get(h, {}).get("_groupvars", {}))
            for anc in chain(g):
                merged.update(groups[anc]["vars"])
            entry = hosts.setdefault(h, {"_groupvars": {}, "_own": {}})
            entry["_groupvars"] = merged
            entry["_own"].update(own)
            members.setdefault(g, []).append(h)
    return {h: {**e["_groupvars"], **e["_own"]} for h, e in hosts.items()}, members


def node_name(host: str) -> str:
    """An inventory name as a node name: lower-case letters, digits and '-', at most 14."""
    if F.NAME_RE.match(host):
        return host
    first = host.split(".")[0] if not re.fullmatch(r"[0-9.]+", host) and ":" not in host else host
    name = re.sub(r"[^a-z0-9-]", "-", first.lower()).strip("-")
    if not name[:1].isalpha():
        name = "h" + name
    return name[:14].rstrip("-") or "host"


def parse_inventory(text: str, path: str) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """(node name -> the fields of its hosts.file.Host, group -> node names)."""
    errs = F.Errors(path)
    groups = _yaml(text, errs) if Path(path).suffix.lower() in (".yml", ".yaml") else _ini(text, errs)
    hostvars, members = _host_vars(groups)
    if not hostvars:
        errs.add("hosts", "no host in the inventory")
    hosts: dict = {}
    seen_names: dict[str, str] = {}
    targets: dict[tuple, str] = {}
    for inv, v in hostvars.items():
        key = f"host {inv}"
        if RANGE.search(inv):
            errs.add(key, "host ranges ([01:50]) are not expanded by wgtrace; list the hosts one by one")
            continue
        for k in v:
            if k in SECRETS:
                errs.add(f"{key}: {k}", "wgtrace logs in with ssh keys (an agent, or IdentityFile), never with a "
                                        "password from the inventory")
            elif (k.startswith("ansible_") or k.startswith("wgtrace_")) and k not in USED:
                errs.add(f"{key}: {k}", "unknown key for wgtrace (it uses ansible_host, ansible_user, ansible_port, "
                                        "ansible_become, ansible_connection, ansible_ssh_common_args and "
                                        "ansible_ssh_extra_args)")
        name = node_name(inv)
        if name in seen_names:
            errs.add(key, f"becomes the node name {name!r}, as {seen_names[name]} does: give one of them a short "
                          f"inventory name")
            continue
        seen_names[name] = inv
        local = str(v.get("ansible_connection", "ssh")) == "local"
        if str(v.get("ansible_connection", "ssh")) not in ("ssh", "smart", "local", "paramiko"):
            errs.add(f"{key}: ansible_connection", f"{v['ansible_connection']!r}: wgtrace reaches hosts over ssh "
                                                   f"(or local)")
        become = _truth(v.get("ansible_become", False))
        if become is None:
            errs.add(f"{key}: ansible_become", "is true or false")
        if str(v.get("ansible_become_method", "sudo")) != "sudo" or str(v.get("ansible_become_user", "root")) != "root":
            errs.add(f"{key}: ansible_become_method", "wgtrace becomes root with sudo -n only")
        addr_ = str(v.get("ansible_host", v.get("ansible_ssh_host", inv)))
        if not check_address(errs, f"{key}: ansible_host", addr_):
            continue
        user = v.get("ansible_user", v.get("ansible_ssh_user"))
        if user is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}", str(user)):
            errs.add(f"{key}: ansible_user", f"{user!r} is not a plain user name")
            continue
        port = v.get("ansible_port", v.get("ansible_ssh_port"))
        if port is not None:
            port = F.integer(errs, f"{key}: ansible_port", int(port) if str(port).isdigit() else port, 1, 65535,
                             "a TCP port")
        words = []
        for k in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
            if k in v:
                words += check_ssh_words(errs, f"{key}: {k}", str(v[k]))
        if v.get("ansible_ssh_private_key_file"):
            words += ["-i", str(v["ansible_ssh_private_key_file"])]
        ignore = v.get("wgtrace_ignore", [])
        ignore = [i.strip() for i in ignore.split(",")] if isinstance(ignore, str) else list(ignore)
        ignore = tuple(i for j, i in enumerate(ignore) if F.iface(errs, f"{key}: wgtrace_ignore[{j}]", i))
        target = f"{user}@{addr_}" if user else addr_
        if not local:
            t = (addr_, port)
            if t in targets:
                errs.add(key, f"{addr_} is also host {targets[t]!r}: one host, one name")
                continue
            targets[t] = inv
        mgmt = _truth(v.get("wgtrace_management", True))
        hosts[name] = dict(name=name, ssh="" if local else target, sudo=bool(become) and str(user) != "root",
                           port=port, ignore=ignore, management=mgmt is not False, local=local, ssh_args=tuple(words))
    if sum(1 for h in hosts.values() if h["local"]) > 1:
        errs.add("ansible_connection", "only one host can be the machine wgtrace runs on (local)")
    if errs.items:
        n = len(errs.items)
        raise LabFileError(f"{path}: {n} error{'s' if n > 1 else ''} in the inventory", errs.items)
    groups_of = {g: [node_name(h) for h in hs if node_name(h) in hosts] for g, hs in members.items()}
    return hosts, {g: hs for g, hs in groups_of.items() if hs}
