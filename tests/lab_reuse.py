"""Share one running lab between the fault tests of a lab file, when a fault was undone cleanly.

Bringing a lab up costs seconds; the fault tests of one catalogue each need the lab as it was
built, not a new one. After a test the lab's state is read again as a fingerprint (addresses,
links, routes of every table, policy rules, sysctls, firewall rules without counters,
WireGuard interfaces and peers without handshake times or byte counts, listening TCP ports)
and compared with the one taken when the lab was fresh: equal, the next fault of the same lab
file runs on it; different, or a fault that touched WireGuard sessions (keys, endpoints, peers
removed, ports), the lab is taken down and the next test builds a fresh one. A test that fails
is never followed on its lab: a failure may leave anything behind.
"""
from __future__ import annotations

import re

SESSION_WORDS = ("remove", "endpoint", "listen-port", "private-key", "{random_key}")
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")
COUNTERS = re.compile(r"\bcounter packets \d+ bytes \d+|\[\d+:\d+\]")


def session_sensitive(fault) -> bool:
    """Does the fault change WireGuard sessions, which a fingerprint does not show (a peer removed
    and added back, a key or endpoint replaced: handshakes and roaming state stay changed)?"""
    if fault.cause in ("wg-no-handshake", "wg-stale-session"):
        return True
    return any(s.argv and s.argv[0] == "wg" and any(w in a for a in s.argv for w in SESSION_WORDS)
               for s in fault.inject)


def fingerprint(lab) -> dict:
    """What the lab's nodes hold now, without what moves by itself (counters, handshake times)."""
    from wgtrace.lab.runtime import load_state
    state = load_state(lab.name)
    nodes = {name: state.node(name) for name in lab.model.nodes}
    tables = sorted({254} | {r.table for n in lab.model.nodes.values() for r in n.routes if r.table})
    reads = {"v4": ["iptables-save"], "v6": ["ip6tables-save"], "nft": ["nft", "list", "ruleset"],
             "rules4": ["ip", "-4", "rule", "show"], "rules6": ["ip", "-6", "rule", "show"],
             "listen": ["ss", "-Hltn"]}
    jobs = {(n, k): h.start(argv) for n, h in nodes.items() for k, argv in reads.items()}
    out: dict = {}
    for name, h in nodes.items():
        links = h.links()
        keys = ["net.ipv4.ip_forward", "net.ipv4.icmp_echo_ignore_all", "net.ipv6.icmp.echo_ignore_all"]
        keys += [f"net.ipv4.conf.{i}.{k}" for i in [*links, "all", "default"]
                 for k in ("rp_filter", "forwarding", "send_redirects", "src_valid_mark")]
        keys += [f"net.ipv6.conf.{i}.{k}" for i in [*links, "all", "default"] for k in ("forwarding", "disable_ipv6")]
        text = {}
        for k in reads:
            r = jobs[(name, k)].wait(10)
            out_lines = native_tables(r.stdout) if k == "nft" else r.stdout.splitlines()
            lines = [COUNTERS.sub("", x) for x in out_lines if not x.startswith("#")]
            text[k] = sorted(lines) if k == "listen" else lines
        out[name] = {
            "links": sorted((l.name, l.up, l.mtu, tuple(sorted(l.addresses)), l.kind, l.master) for l in links.values()),
            "routes": sorted((t, f, r.dst, r.via or "", r.dev or "", r.proto) for t in tables for f in (4, 6)
                             for r in h.routes(t, f)),
            "sysctl": h.sysctls(keys),
            "wg": sorted((w.name, w.public_key, w.listen_port, w.fwmark,
                          tuple(sorted((p.public_key, p.endpoint or "", tuple(sorted(p.allowed_ips)), p.keepalive)
                                       for p in w.peers))) for w in h.wg()),
            **text,
        }
    return out


def native_tables(ruleset: str) -> list[str]:
    """``nft list ruleset`` without the tables iptables-nft keeps (``ip``/``ip6`` filter, nat,
    mangle, raw, security): iptables-save shows those, and iptables-nft leaves an empty chain
    behind where a rule was added and deleted again."""
    out, skip = [], False
    for line in ruleset.splitlines():
        if line.startswith("table "):
            words = line.split()
            skip = len(words) >= 3 and words[1] in ("ip", "ip6") and words[2] in IPTABLES_TABLES
        if not skip:
            out.append(line)
    return out


def differences(a: dict, b: dict) -> list[str]:
    """Where two fingerprints differ, as node/part names (for the reason a lab is rebuilt)."""
    return [f"{n}.{k}" for n in sorted(set(a) | set(b)) for k in sorted(set(a.get(n, {})) | set(b.get(n, {})))
            if a.get(n, {}).get(k) != b.get(n, {}).get(k)]


class SharedLabs:
    """One running lab per lab file, handed from test to test while its fingerprint holds."""

    def __init__(self, factory) -> None:
        self.factory = factory
        self.labs: dict[str, tuple] = {}      # lab file -> (context manager, RunningLab, fingerprint, used)
        self.built = self.reused = 0
        self.rebuilt_because: list[str] = []

    def get(self, lab_file: str, fault=None):
        """The shared lab of ``lab_file``; a fresh one for a fault that depends on WireGuard
        sessions (a peer that must stay silent: traffic of an earlier test still under way, a TCP
        connection closing, would speak for it and heal it)."""
        for other in [k for k in self.labs if k != lab_file]:
            self.drop(other)                  # one lab at a time: the machine is shared
        if lab_file in self.labs and fault is not None and session_sensitive(fault) and self.labs[lab_file][3]:
            self.rebuilt_because.append(f"{fault.name}: a fresh lab for a fault of WireGuard sessions")
            self.drop(lab_file)
        if lab_file not in self.labs:
            cm = self.factory.running(lab_file=lab_file)
            lab = cm.__enter__()
            self.labs[lab_file] = (cm, lab, fingerprint(lab), False)
            self.built += 1
        else:
            self.reused += 1
        cm, lab, fresh, _ = self.labs[lab_file]
        self.labs[lab_file] = (cm, lab, fresh, True)      # used from now on
        return lab

    def done(self, lab_file: str, fault, passed: bool) -> None:
        """After a test on the shared lab: keep it for the next one only if it is as it was built."""
        if lab_file not in self.labs:
            return
        _, lab, fresh, _ = self.labs[lab_file]
        why = []
        if not passed:
            why = ["the test failed"]
        elif session_sensitive(fault):
            why = ["WireGuard sessions changed"]
        else:
            why = differences(fresh, fingerprint(lab))
        if why:
            self.rebuilt_because.append(f"{fault.name}: {', '.join(why[:4])}")
            self.drop(lab_file)

    def drop(self, lab_file: str) -> None:
        cm, _, _, _ = self.labs.pop(lab_file)
        cm.__exit__(None, None, None)

    def close(self) -> None:
        for k in list(self.labs):
            self.drop(k)
