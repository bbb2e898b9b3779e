"""A node that is a real host, reached over SSH: the second implementation of ``nodes.base.Node``.

Reads come from one snapshot per host (nodes/sshstate.py: iproute2, /proc, the firewall, a
redacted WireGuard dump, all in one round trip), taken for every host at once by ``Hosts``;
what must be read at its moment (route lookups, the ARP table after the probe, conntrack,
firewall counters) is asked live. Capture is tcpdump on the host (nodes/sshcapture.py), the
probe is sent by python3 on the host through a raw socket. Nothing is installed on the host
and, unless a fix is asked for, nothing there is changed: every command wgtrace sends is a read.
"""
from __future__ import annotations

import select
import subprocess
import sys
import time
from typing import Sequence

from ..errors import MissingTool
from .base import CaptureSource, LinkInfo, Node, RouteInfo, RouteLookup
from .sshconn import Conn, Pool, Shell, run_all
from .sshcapture import NoCapture, TcpdumpCapture, capture_script
from .sshstate import (HostState, parse_conntrack, parse_neigh, parse_route_get, parse_snapshot,
                       parse_sysctl, redact_command, snapshot_script)

FRESH = 10.0        # seconds a snapshot answers for links, routes and sysctls
SEND = ("import os,socket,sys,time\n"
        "d=bytes.fromhex(sys.stdin.read().strip())\n"
        "s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)\n"
        "t=time.time()\n"
        "try:\n s.sendto(d,(sys.argv[1],0)); print('ok %.9f' % t)\n"
        "except OSError as e:\n print('err %.9f %s' % (t, os.strerror(e.errno or 5)))\n")
INSTALL = {"tcpdump": "tcpdump", "python3": "python3", "wg": "wireguard-tools", "ip": "iproute2",
           "iptables-save": "iptables"}


def _read_only(argv: Sequence[str]) -> bool:
    """Does this command only read? Anything else (a fix) makes the snapshot stale."""
    a = list(argv)
    if not a:
        return True
    if a[0] in ("iptables-save", "ip6tables-save", "cat", "true"):
        return True
    if a[0] == "wg":
        return len(a) < 2 or a[1] == "show"
    if a[0] == "ip":
        return any(w in ("show", "get", "list", "ls") for w in a) and \
            not any(w in ("add", "del", "delete", "set", "replace", "change", "flush", "append") for w in a)
    return False


def _wg_argv(argv: list[str]) -> list[str]:
    """WireGuard commands as they may run on a host: a dump only redacted there; nothing that
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


class Hosts:
    """The hosts of one run: their connections (one pool), snapshots read together, the
    captures open now (so the sender can wait until every one listens)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.nodes: dict[str, SshNode] = {}
        self.captures: dict[str, TcpdumpCapture] = {}
        self.udp_ports: set[int] = set()
        self.unseen: dict[str, str] = {}     # host -> what of it cannot be seen (the Network shares it)

    def update_unseen(self) -> None:
        self.unseen.clear()
        self.unseen.update({n: h.unseen() for n, h in self.nodes.items() if h.unseen()})

    def refresh(self, names: Sequence[str] | None = None) -> None:
        """Read every (named) reachable host's snapshot at once."""
        todo = [self.nodes[n] for n in (names or self.nodes) if not self.nodes[n].conn.problem]
        scripts = {h.name: snapshot_script(h.conn.sudo) for h in todo}
        t0 = time.time()
        res = run_all({h.name: (h.conn.script(), scripts[h.name][0].encode()) for h in todo})
        t1 = time.time()
        for h in todo:
            code, out, err = res[h.name]
            h.take_snapshot(code, out, err, scripts[h.name][1], t0, t1)
        self.udp_ports = {w.listen_port for h in self.nodes.values() if h.state for w in h.state.wg}
        self.udp_ports |= {int(p.endpoint.rsplit(":", 1)[1]) for h in self.nodes.values() if h.state
                           for w in h.state.wg for p in w.peers if p.endpoint and ":" in p.endpoint}
        self.update_unseen()

    def measure(self) -> None:
        """One empty command per host, all at once: how long a round trip over SSH takes."""
        live = [h for h in self.nodes.values() if not h.conn.problem]
        t0 = time.monotonic()
        run_all({h.name: (h.conn.command(["true"], privileged=False), None) for h in live}, timeout=10)
        for h in live:
            h.conn.rtt = time.monotonic() - t0

    def wait_listening(self, limit: float = 8.0) -> None:
        """Until every open tcpdump says it is listening (or has failed: that host is then unseen)."""
        deadline = time.monotonic() + limit
        waiting = {n: c for n, c in self.captures.items() if not c.listening and not c.problem}
        while waiting and time.monotonic() < deadline:
            fds = {c.proc.stderr.fileno(): c for c in waiting.values()}
            select.select(list(fds), [], [], 0.05)
            for n, c in list(waiting.items()):
                c.poll_stderr()
                if c.listening or c.problem:
                    del waiting[n]
        for n, c in self.captures.items():
            if not c.listening:
                self.nodes[n].notes.append(f"tcpdump on {n} did not start ({c.problem or 'no answer in time'}): "
                                           f"packets there are not seen")
        self.update_unseen()

    def close(self) -> None:
        for c in list(self.captures.values()):
            try:
                c.close()
            except OSError:
                pass
        self.captures.clear()
        for h in self.nodes.values():
            h.shell.close()
        self.pool.close()


class SshNode(Node):
    kind = "ssh"

    def __init__(self, name: str, conn: Conn, hosts: Hosts, ignore: Sequence[str] = ()) -> None:
        self.name = name
        self.conn = conn
        self.hosts = hosts
        self.ignore = set(ignore)
        self.state: HostState | None = None
        self.read_at = 0.0
        self.stale = True
        self.problem = ""                     # why the host cannot be read at all
        self.notes: list[str] = []            # what of it cannot be seen
        self.confirm = None                   # --fix: asks before a change runs (node, argv) -> bool
        self.shell = Shell(conn)              # for live reads (started at the first one)
        hosts.nodes[name] = self

    # --- processes --------------------------------------------------------------------
    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        if self.conn.problem or self.problem:
            raise OSError(self.conn.problem or self.problem)
        argv = list(argv)
        kw.pop("env", None)                   # the host's own environment applies
        if not _read_only(argv):
            # Read-only unless a fix is asked for: a change runs only when ``confirm`` (set by
            # --fix: shown, asked) says yes; otherwise it is not run, and says so.
            if self.confirm is None or not self.confirm(self.name, argv):
                why = "not run: declined" if self.confirm else "not run: wgtrace changes nothing on a host without --fix"
                return subprocess.Popen([sys.executable, "-c", f"import sys; sys.stderr.write({why!r}); sys.exit(1)"],
                                        **kw)
            self.stale = True
        return subprocess.Popen(self.conn.command(_wg_argv(argv)), **kw)

    def _live(self, argv: list[str], privileged: bool = False, timeout: float = 15) -> tuple[int, str, str]:
        """A read now, on the host's open shell (privileged where sudo is set); a new session if
        that shell is gone. (status, output, error text)."""
        if self.conn.problem or self.problem:
            return 255, "", self.conn.problem or self.problem
        r = self.shell.run(argv, timeout)
        if r is not None:
            return (r[0], r[1], "") if r[0] == 0 else (r[0], "", r[1])
        r = run_all({self.name: (self.conn.command(argv, privileged), None)}, timeout)
        return r[self.name]

    # --- the snapshot -----------------------------------------------------------------
    def take_snapshot(self, code: int, out: str, err: str, mark: str, t0: float, t1: float) -> None:
        self.read_at, self.stale = time.monotonic(), False
        self.notes = []
        if code == 255 and mark not in out:
            from .sshconn import explain
            self.problem = explain(self.name, self.conn.target, err)
            return
        st = parse_snapshot(out, mark)
        self.state = st
        n, t = self.name, self.conn.target
        if st.sudo_error:
            self.problem = (f"{n} ({t}): sudo asks for a password or refuses ({st.sudo_error[:120]}); allow "
                            f"'sudo -n' for this user without a password, or log in as root.")
        elif st.uid != 0 and not self.conn.sudo:
            self.problem = (f"{n} ({t}): logged in as uid {st.uid}, not root; set sudo = true for this host "
                            f"in the hosts file, or log in as root.")
        elif "ip" not in st.tools or not st.links:
            self.problem = f"{n} ({t}) has no 'ip' (iproute2): install iproute2 there."
        else:
            self.problem = ""
        if self.problem:
            return
        if "tcpdump" not in st.tools:
            self.notes.append(f"{n} has no tcpdump: packets there are not seen (install tcpdump there).")
        wg_links = [l.name for l in st.links.values() if l.kind == "wireguard"] + st.wg_sockets
        if "wg" not in st.tools and wg_links:
            self.notes.append(f"{n} has WireGuard ({', '.join(sorted(set(wg_links)))}) but no 'wg' tool: its peers "
                              f"are not seen (install wireguard-tools there).")
        elif st.wg_error and wg_links:
            self.notes.append(f"{n}: WireGuard could not be read ({st.wg_error[:120]}).")
        if st.iptables_error:
            self.notes.append(f"{n}: the firewall could not be read ({st.iptables_error[:120]}).")
        if st.clock and not (t0 - 0.5 <= st.clock <= t1 + 0.5):
            self.notes.append(f"{n}'s clock is {st.clock - (t0 + t1) / 2:+.1f} s off this machine's: hops on "
                              f"different hosts may be out of order (sync clocks with NTP).")

    def _state(self) -> HostState:
        if self.conn.problem or self.problem:
            raise OSError(self.conn.problem or self.problem)
        if self.state is None or self.stale or time.monotonic() - self.read_at > FRESH:
            self.hosts.refresh([self.name])
            if self.problem or self.state is None:
                raise OSError(self.problem or f"{self.name} could not be read")
        return self.state

    def ask_before_changes(self, confirm) -> None:
        self.confirm = confirm

    def unseen(self) -> str:
        """Why this host, or part of it, cannot be seen ("" when all of it can)."""
        return " ".join(x for x in [self.conn.problem or self.problem] + self.notes if x)

    # --- state ----------------------------------------------------------------------------
    def links(self) -> dict[str, LinkInfo]:
        return {n: l for n, l in self._state().links.items() if n not in self.ignore}

    def routes(self, table: int = 254, family: int = 4) -> list[RouteInfo]:
        return [r for r in self._state().routes if r.table == table and r.family == family
                and r.dev not in self.ignore]

    def route_get(self, dst: str, src: str | None = None, iif: str | None = None) -> RouteLookup:
        argv = ["ip", "-j", _fam(dst), "route", "get", dst] + (["from", src] if src and iif else []) + \
            (["iif", iif] if iif else [])
        return parse_route_get(*self._live(argv, privileged=True))

    def neighbours(self, family: int = 4) -> list[tuple[str, str, str]]:
        code, out, _ = self._live(["ip", "-j", f"-{family}", "neigh", "show"])
        return [n for n in parse_neigh(out) if n[0] not in self.ignore] if code == 0 else []

    def sysctls(self, keys: Sequence[str]) -> dict[str, str]:
        have = self._state().sysctl
        missing = [k for k in keys if k not in have and k.startswith("net.")]
        if missing:
            files = ["/proc/sys/" + k.replace(".", "/") for k in missing]
            have = {**have, **parse_sysctl(self._live(["grep", "-H", "."] + files)[1])}
        return {k: have.get(k, "") for k in keys}

    def wg_ifaces(self) -> list[str]:
        try:
            return list(self._state().wg_ifaces)
        except OSError:
            return []

    def conntrack(self, src: str, dst: str, ident: int | None = None) -> list[tuple[str, str, str, str]]:
        tools = self.state.tools if self.state else set()
        fam = "ipv6" if _fam(src) == "-6" else "ipv4"
        argv = ["conntrack", "-L", "-f", fam] if "conntrack" in tools else ["cat", "/proc/net/nf_conntrack"]
        code, out, _ = self._live(argv, privileged=True)
        return parse_conntrack(out, src, dst) if code == 0 else []

    # --- the probe ------------------------------------------------------------------------
    def open_capture(self) -> CaptureSource:
        st = self.state
        if self.conn.problem or self.problem or st is None or "tcpdump" not in st.tools:
            return NoCapture()
        names = {l.index: n for n, l in st.links.items()}
        proc = subprocess.Popen(self.conn.command(["sh", "-c", capture_script(self.hosts.udp_ports, self.conn.sudo)],
                                                  privileged=False),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        cap = TcpdumpCapture(proc, names, self.ignore | {"lo"}, self.name)
        old = self.hosts.captures.pop(self.name, None)
        if old is not None:
            old.close()
        self.hosts.captures[self.name] = cap
        return _Tracked(cap, self.hosts, self.name)

    def prepare_capture(self, source: CaptureSource) -> None:
        """The sender waits until every host's tcpdump listens; its own frames are held back a
        little, so the reply reaching it does not end the probe before the others' frames arrive."""
        self.hosts.wait_listening()
        rtt = max([h.conn.rtt for h in self.hosts.nodes.values()] or [0.0])
        cap = getattr(source, "cap", None)
        if cap is not None:
            cap.hold_for(0.04 + 2 * rtt)

    def source_route(self, dst: str) -> tuple[RouteLookup, str]:
        r = parse_route_get(*self._live(["ip", "-j", _fam(dst), "route", "get", dst]))
        return r, ("" if r.ok else r.error)

    def send_raw(self, packet: bytes, dst: str) -> tuple[float, str]:
        st = self._state()
        if "python3" not in st.tools:
            raise MissingTool(f"{self.name} has no python3: wgtrace sends its probe there with python3 "
                              f"(nothing else is installed); install python3 on {self.name}, or probe from another host.")
        r = run_all({self.name: (self.conn.command(["python3", "-c", SEND, dst]), packet.hex().encode())}, 15)
        code, out, err = r[self.name]
        words = out.split(None, 2)
        if code != 0 or len(words) < 2:
            raise MissingTool(f"{self.name} could not send the probe (a raw socket needs root): "
                              f"{(err.strip().splitlines() or ['no answer'])[-1][:160]}")
        return float(words[1]), (words[2].strip() if words[0] == "err" and len(words) > 2 else "")


def _fam(address: str) -> str:
    """iproute2's family option for an address."""
    return "-6" if ":" in address else "-4"


class _Tracked(CaptureSource):
    """A host's capture as observe() holds it; closing it also forgets it in ``Hosts``."""

    def __init__(self, cap: TcpdumpCapture, hosts: Hosts, name: str) -> None:
        self.cap, self.hosts, self.name = cap, hosts, name

    def fileno(self) -> int:
        return self.cap.fileno()

    def read(self):
        return self.cap.read()

    def ifaces(self) -> list[str]:
        return self.cap.ifaces()

    def close(self) -> None:
        if self.hosts.captures.get(self.name) is self.cap:
            del self.hosts.captures[self.name]
        self.cap.close()
