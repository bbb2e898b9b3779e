"""A node that is a real host, reached over SSH: the second implementation of ``nodes.base.Node``.

Every command goes through the host's one shell (nodes/sshconn.py ``Shell``): the snapshot (nodes/
sshstate.py: iproute2, /proc, the firewall, a redacted WireGuard dump, all in one round trip),
taken for every host at once by ``Hosts``; what must be read at its moment (route lookups, the
ARP table after the probe, conntrack, firewall counters) asked live on it; the probe, sent by
python3 on the host through a raw socket. Capture is tcpdump on the host (nodes/sshcapture.py),
the only other session: two per host at most, whatever wgtrace does. Nothing is installed on the
host and, unless a fix is asked for, nothing there is changed: every command wgtrace sends is a
read (nodes/guard.py).
"""
from __future__ import annotations

import select
import subprocess
import sys
import time
from typing import Sequence

from ..errors import MissingTool
from .base import CaptureSource, LinkInfo, Node, RouteInfo, RouteLookup
from .guard import read_only, wg_argv
from .sshconn import Conn, Pool, explain
from .sshcapture import NoCapture, TcpdumpCapture, capture_script
from .sshstate import (HostState, parse_conntrack, parse_neigh, parse_route_get, parse_snapshot,
                       parse_sysctl, snapshot_script)

FRESH = 10.0        # seconds a snapshot answers for links, routes and sysctls
SEND = ("import os,socket,sys,time\n"
        "d=bytes.fromhex(sys.argv[2])\n"
        "s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_RAW)\n"
        "t=time.time()\n"
        "try:\n s.sendto(d,(sys.argv[1],0)); print('ok %.9f' % t)\n"
        "except OSError as e:\n print('err %.9f %s' % (t, os.strerror(e.errno or 5)))\n")
INSTALL = {"tcpdump": "tcpdump", "python3": "python3", "wg": "wireguard-tools", "ip": "iproute2",
           "iptables-save": "iptables"}


class _Answer:
    """A command that was not sent (refused here, or the host cannot be used): its answer now."""

    def __init__(self, argv: list[str], why: str, code: int = 1) -> None:
        self.argv, self.why, self.code = argv, why, code

    def wait(self, timeout: float = 0) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(self.argv, self.code, "", self.why)


class Hosts:
    """The hosts of one run: their connections (one pool), snapshots read together, the
    captures open now (so the sender can wait until every one listens)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.nodes: dict[str, SshNode] = {}
        self.captures: dict[str, TcpdumpCapture] = {}
        self.udp_ports: set[int] = set()
        self.unseen: dict[str, str] = {}     # host -> what of it cannot be seen (the Network shares it)
        self.others: dict[str, HostState] = {}   # nodes of the same network that are not SSH hosts
        self.firewall = True                  # the snapshot reads the firewall (a big network: only facts do)

    def update_unseen(self) -> None:
        for n in self.nodes:
            self.unseen.pop(n, None)
        self.unseen.update({n: h.unseen() for n, h in self.nodes.items() if h.unseen()})

    def open(self) -> None:
        """Log in to every host and read its snapshot, in one go (the snapshot is the login's first
        command)."""
        scripts = {n: snapshot_script(h.conn.sudo, self.firewall) for n, h in self.nodes.items()}
        t0 = time.time()
        res = self.pool.open({n: ["sh", "-c", sc[0]] for n, sc in scripts.items()})
        self._take([h for h in self.nodes.values() if not h.conn.problem], scripts, res, t0, time.time())

    def refresh(self, names: Sequence[str] | None = None) -> None:
        """Read every (named) reachable host's snapshot at once."""
        todo = [self.nodes[n] for n in (names or self.nodes) if not self.nodes[n].conn.problem]
        scripts = {h.name: snapshot_script(h.conn.sudo, self.firewall) for h in todo}
        t0 = time.time()
        jobs = {h.name: h.conn.shell.submit(["sh", "-c", scripts[h.name][0]]) for h in todo}
        res = {n: j.result(20) for n, j in jobs.items()}
        self._take(todo, scripts, res, t0, time.time())

    def _take(self, todo: list, scripts: dict, res: dict, t0: float, t1: float) -> None:
        for h in todo:
            code, out, err = res[h.name]
            h.take_snapshot(code, out, err, scripts[h.name][1], t0, t1)
        states = [h.state for h in self.nodes.values() if h.state] + list(self.others.values())
        self.udp_ports = {w.listen_port for st in states for w in st.wg}
        self.udp_ports |= {int(p.endpoint.rsplit(":", 1)[1]) for st in states
                           for w in st.wg for p in w.peers if p.endpoint and ":" in p.endpoint}
        self.update_unseen()

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
            if not c.listening and not c.noted:
                c.noted = True
                self.nodes[n].notes.append(c.blind())
        self.update_unseen()

    def close(self) -> None:
        for c in list(self.captures.values()):
            try:
                c.close()
            except OSError:
                pass
        self.captures.clear()
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
        self.shell = conn.shell               # every command but the capture goes through it
        hosts.nodes[name] = self

    # --- processes --------------------------------------------------------------------
    def _allowed(self, argv: list[str]) -> str:
        """"" when ``argv`` may run now; else why not. Read-only unless a fix is asked for: a
        change runs only when ``confirm`` (set by --fix: shown, asked) says yes."""
        if self.conn.problem or self.problem:
            return self.conn.problem or self.problem
        if not read_only(argv):
            if self.confirm is None or not self.confirm(self.name, argv):
                return "not run: declined" if self.confirm else "not run: wgtrace changes nothing on a host without --fix"
            self.stale = True
        return ""

    def start(self, argv: Sequence[str], input: str | None = None):
        """On the host's shell (privileged), answered when waited for."""
        argv = list(argv)
        why = self._allowed(argv)
        if why:
            return _Answer(argv, why, 255 if why == (self.conn.problem or self.problem) else 1)
        words = wg_argv(argv)
        if input is not None:                 # the shell's commands read /dev/null: the input is an argument
            words = ["sh", "-c", 'x=$1; shift; printf %s "$x" | "$@"', "sh", input, *words]
        return self.shell.submit(words, privileged=True)

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        """A session of its own, for interactive use (trace and diagnose use ``start``)."""
        argv = list(argv)
        kw.pop("env", None)                   # the host's own environment applies
        why = self._allowed(argv)
        if why:
            return subprocess.Popen([sys.executable, "-c", f"import sys; sys.stderr.write({why!r}); sys.exit(1)"], **kw)
        return subprocess.Popen(self.conn.command(wg_argv(argv)), **kw)

    def _live(self, argv: list[str], privileged: bool = False, timeout: float = 15) -> tuple[int, str, str]:
        """A read now, on the host's shell (privileged where sudo is set). (status, output, error text)."""
        if self.conn.problem or self.problem:
            return 255, "", self.conn.problem or self.problem
        return self.shell.run(argv, timeout, privileged)

    # --- the snapshot -----------------------------------------------------------------
    def take_snapshot(self, code: int, out: str, err: str, mark: str, t0: float, t1: float) -> None:
        self.read_at, self.stale = time.monotonic(), False
        self.notes = []
        if code == 255 and mark not in out:
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
        return self.route_get_soon(dst, src, iif)()

    def route_get_soon(self, dst: str, src: str | None = None, iif: str | None = None):
        argv = ["ip", "-j", _fam(dst), "route", "get", dst] + (["from", src] if src and iif else []) + \
            (["iif", iif] if iif else [])
        if self.conn.problem or self.problem:
            return lambda: RouteLookup(False, error=self.conn.problem or self.problem)
        job = self.shell.submit(argv, privileged=True)
        return lambda: parse_route_get(*job.result(15))

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
        if self.conn.problem or self.problem or st is None:
            return NoCapture(self.conn.problem or self.problem or f"{self.name} could not be read")
        if "tcpdump" not in st.tools:
            return NoCapture(f"{self.name} has no tcpdump: packets there are not seen (install tcpdump there).")
        names = {l.index: n for n, l in st.links.items()}
        wg = {l.index for n, l in st.links.items() if l.kind == "wireguard" or n in st.wg_ifaces}
        proc = subprocess.Popen(self.conn.command(["sh", "-c", capture_script(self.hosts.udp_ports, self.conn.sudo, wg)],
                                                  privileged=False),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        cap = TcpdumpCapture(proc, names, self.ignore | {"lo"}, self.name, self.conn.target)
        old = self.hosts.captures.pop(self.name, None)
        if old is not None:
            old.close()
        self.hosts.captures[self.name] = cap
        return _Tracked(cap, self.hosts, self.name)

    def await_capture(self, source: CaptureSource) -> None:
        """Until every host's tcpdump listens (the first host asked waits for all of them)."""
        self.hosts.wait_listening()

    def capture_lag(self) -> float:
        """Frames come back over SSH: a little more than the slowest round trip after they happened."""
        return 0.04 + 2 * max([h.conn.rtt for h in self.hosts.nodes.values()] or [0.0])

    def source_route(self, dst: str) -> tuple[RouteLookup, str]:
        r = parse_route_get(*self._live(["ip", "-j", _fam(dst), "route", "get", dst]))
        return r, ("" if r.ok else r.error)

    def send_raw(self, packet: bytes, dst: str) -> tuple[float, str]:
        st = self._state()
        if "python3" not in st.tools:
            raise MissingTool(f"{self.name} has no python3: wgtrace sends its probe there with python3 "
                              f"(nothing else is installed); install python3 on {self.name}, or probe from another host.")
        code, out, err = self._live(["python3", "-c", SEND, dst, packet.hex()], privileged=True)
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

    def blind(self) -> str:
        return self.cap.blind()

    def close(self) -> None:
        if self.hosts.captures.get(self.name) is self.cap:
            del self.hosts.captures[self.name]
        self.cap.close()
