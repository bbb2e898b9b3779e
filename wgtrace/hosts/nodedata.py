"""One host's own part of a lab file, from its state: routes, policy rules, sysctls, firewall,
WireGuard. Only what a lab file can say and its checks accept is kept (model/fields.py); what
is left out is noted, never silently lost.

discover.py decides the interfaces, addresses and cables; this module gets them as given.
"""
from __future__ import annotations

import shlex

from .. import addr
from ..nodes.sshstate import HostState
from ..model import fields as F

BUILTIN = {"filter": {"INPUT", "FORWARD", "OUTPUT"},
           "nat": {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
           "mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
           "raw": {"PREROUTING", "OUTPUT"}}
DEFAULT_RULES = {0, 32766, 32767}
RULE_KEYS = {"priority", "src", "table", "fwmark", "not", "suppress_prefixlength", "flags"}
WG_STAGE = "tunnels"       # sysctls of WireGuard interfaces: they exist only once stage 0 has made them


class Notes(list):
    """What discovery left out, one line each (written as comments; host text made printable)."""

    def add(self, host: str, what: str) -> None:
        clean = "".join(c if c.isprintable() else "?" for c in what)[:300]
        self.append(f"{host}: {clean}")


def _check(fn, *args) -> bool:
    errs = F.Errors("-")
    fn(errs, *args)
    return not errs.items


def routes(host: str, st: HostState, kept_ifaces: set[str], notes: Notes) -> list[dict]:
    out, seen = [], set()
    for r, typ in zip(st.routes, st.route_types):
        if r.table in (255, 253, 0) or r.proto == "kernel":
            continue             # local and broadcast routes, connected networks: the kernel makes them
        label = f"route {r.dst}" + (f" via {r.via}" if r.via else "") + (f" dev {r.dev}" if r.dev else "") + \
            (f" table {r.table}" if r.table != 254 else "")
        if typ != "unicast":
            notes.add(host, f"{label}: a {typ} route, which a lab file cannot declare; left out")
            continue
        if r.dev is None and r.via is None:
            notes.add(host, f"{label}: a multipath route; left out")
            continue
        if r.dev is not None and r.dev not in kept_ifaces:
            continue             # an interface left out of the picture takes its routes with it
        d: dict = {"dst": r.dst if r.dst != "default" else ("::/0" if r.family == 6 else "default")}
        if r.dst != "default":
            d["dst"] = addr.normal(r.dst)
        if r.via:
            d["via"] = r.via
        if r.dev:
            d["dev"] = r.dev
        if r.table != 254:
            d["table"] = r.table
        key = (d["dst"], r.table, r.family)
        if key in seen:
            notes.add(host, f"{label}: a second route for {d['dst']} (another metric); left out")
            continue
        if (r.via and not _check(F.ip, "via", r.via)) or not 0 < r.table < 2 ** 31:
            notes.add(host, f"{label}: not something a lab file can say; left out")
            continue
        seen.add(key)
        out.append(d)
    return out


def ip_rules(host: str, st: HostState, notes: Notes) -> list[dict]:
    out = []
    for fam, r in [(4, r) for r in st.rules] + [(6, r) for r in st.rules6]:
        if "suppress_prefixlen" in r:       # as iproute2's JSON spells it
            r = {("suppress_prefixlength" if k == "suppress_prefixlen" else k): v for k, v in r.items()}
        prio = r.get("priority")
        if prio in DEFAULT_RULES and set(r) <= {"priority", "src", "table"}:
            continue
        table = str(r.get("table", ""))
        extra = set(r) - RULE_KEYS
        if extra or r.get("src", "all") != "all" or not (table == "main" or table.isdigit()):
            notes.add(host, f"ip rule {prio}: selects on {', '.join(sorted(extra)) or 'a source'} or an unnamed table; "
                            f"a lab file's rules select on fwmark only; left out")
            continue
        d: dict = {"table": "main" if table == "main" else int(table)}
        if "fwmark" in r:
            try:
                d["fwmark"] = int(str(r["fwmark"]).split("/")[0], 0)
            except ValueError:
                notes.add(host, f"ip rule {prio}: fwmark {r['fwmark']!r} not understood; left out")
                continue
            if "not" in r:
                d["not"] = True
        if "suppress_prefixlength" in r:
            d["suppress_prefixlength"] = int(r["suppress_prefixlength"])
        if isinstance(prio, int) and 0 < prio < 32766:
            d["priority"] = prio
        if fam == 6:
            d["family"] = 6
        out.append(d)
    return out


def sysctls(host: str, st: HostState, ifaces: set[str], wg_ifaces: set[str]) -> list[dict]:
    s = st.sysctl
    out = [{"key": "net.ipv4.ip_forward", "value": s.get("net.ipv4.ip_forward", "0")}]
    for k in ("forwarding", "disable_ipv6"):
        if s.get(f"net.ipv6.conf.all.{k}", "0") != "0":
            out.append({"key": f"net.ipv6.conf.all.{k}", "value": s[f"net.ipv6.conf.all.{k}"]})
    for k in ("rp_filter", "send_redirects"):
        if f"net.ipv4.conf.all.{k}" in s:
            out.append({"key": f"net.ipv4.conf.all.{k}", "value": s[f"net.ipv4.conf.all.{k}"]})
    if s.get("net.ipv4.icmp_echo_ignore_all") == "1":
        out.append({"key": "net.ipv4.icmp_echo_ignore_all", "value": "1"})
    for iface in sorted(ifaces | wg_ifaces):
        if "." in iface:
            continue             # sysctl -w reads dots as separators: such a name cannot be set this way
        for k in ("rp_filter", "send_redirects"):
            v, default = s.get(f"net.ipv4.conf.{iface}.{k}"), s.get(f"net.ipv4.conf.default.{k}")
            if v is not None and v != default:
                item = {"key": f"net.ipv4.conf.{iface}.{k}", "value": v}
                if iface in wg_ifaces:
                    item["stage"] = WG_STAGE
                out.append(item)
    return [x for x in out if _check(F.sysctl, "sysctl", x["key"], x["value"])]


def firewall(host: str, st: HostState, notes: Notes, family: int = 4) -> tuple[dict, list[dict]]:
    """(filter chain policies that are not ACCEPT, rules in iptables' words) from iptables-save
    (``family`` 6: ip6tables-save)."""
    policies, rules, table, chains = {}, [], "filter", set()
    prog = "ip6tables" if family == 6 else "iptables"
    for line in (st.ip6tables if family == 6 else st.iptables).splitlines():
        line = line.strip()
        if line.startswith("*"):
            table, chains = line[1:], set()
        elif line.startswith(":"):
            words = line[1:].split()
            if words:
                chains.add(words[0])
                if table == "filter" and words[0] in BUILTIN["filter"] and len(words) > 1 and words[1] == "DROP":
                    policies[words[0]] = "DROP"
        elif line.startswith("-A ") or line.startswith("[") and "] -A " in line:
            rule = line.split("] ", 1)[1] if line.startswith("[") else line      # counters dropped
            try:
                words = shlex.split(rule)
            except ValueError:
                notes.add(host, f"{prog} -t {table} {rule}: unbalanced quotes; left out")
                continue
            chain = words[1] if len(words) > 1 else ""
            target = words[words.index("-j") + 1] if "-j" in words[:-1] else ""
            own = chains - BUILTIN.get(table, set())
            if chain not in BUILTIN.get(table, set()) or target in own or \
                    ("-g" in words and words[words.index("-g") + 1:][:1] and words[words.index("-g") + 1] in own):
                notes.add(host, f"{prog} -t {table} {rule}: uses a chain of its own ({chain}/{target}); "
                                f"a lab file has built-in chains only; left out")
                continue
            text = f"-t {table} " + shlex.join(words)
            if not _check(F.iptables_rule, "rule", text, family):
                notes.add(host, f"{prog} {text}: not plain words a lab file accepts; left out")
                continue
            rules.append({"rule": text})
    return policies, rules


def endpoint_of(ep: str | None, peer_host: str, owner_of: dict[str, tuple[str, str]],
                ports: dict[str, int]) -> tuple[str | None, str]:
    """(a lab-file endpoint, "" or why there is none). The peer's own address: "host:iface" (or
    "ip:port" at another port); another host's or nobody's address: the peer is behind NAT or an
    unknown middle, and its endpoint is learned, not declared."""
    if not ep or ":" not in ep:
        return None, ""
    ip, port = addr.host_of(ep), addr.port_of(ep) or 0
    owner = owner_of.get(ip)
    if owner and owner[0] == peer_host:
        node_ep = f"{owner[0]}:{owner[1]}"
        # "host:iface" names the interface's IPv4 address where it has one
        return (node_ep if ports.get(peer_host) == port and addr.family(ip) == 4 else ep), ""
    if owner:
        return None, f"reached at {ep}, an address of {owner[0]}: NAT on the way; the endpoint is learned"
    return None, f"reached at {ep}, an address of no host: NAT or a machine in the middle"


def wireguard(host: str, st: HostState, wg_addr: dict[str, list[str]], key_owner: dict[str, str],
              owner_of: dict[str, tuple[str, str]], ports: dict[str, int], wg_hosts: set[str],
              notes: Notes) -> dict:
    out = {}
    for w in st.wg:
        if w.name not in wg_addr:
            continue
        d: dict = {"address": wg_addr[w.name] if len(wg_addr[w.name]) > 1 else wg_addr[w.name][0]}
        if w.listen_port:
            d["listen_port"] = w.listen_port
        if w.fwmark:
            d["fwmark"] = w.fwmark
        peers, seen = [], set()
        for p in w.peers:
            who = key_owner.get(p.public_key)
            if who is None or who == host or who not in wg_hosts or who in seen:
                why = "its own key" if who == host else "a key no host has" if who is None else \
                    "a second peer for the same host" if who in seen else "a host without a usable tunnel"
                notes.add(host, f"{w.name} peer {p.public_key[:8]}…: {why}; left out")
                continue
            seen.add(who)
            pd: dict = {"peer": who, "allowed_ips": [addr.normal(a) for a in p.allowed_ips
                                                     if _check(F.network, "ip", addr.normal(a))]}
            ep, why = endpoint_of(p.endpoint, who, owner_of, ports)
            if ep:
                pd["endpoint"] = ep
            elif why:
                notes.add(host, f"{w.name} peer {who}: {why}")
            if p.keepalive:
                pd["keepalive"] = p.keepalive
            peers.append(pd)
        d["peers"] = peers
        out[w.name] = d
    return out
