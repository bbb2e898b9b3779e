"""SSH connections to real hosts: one multiplexed OpenSSH connection per host, opened in parallel.

Everything goes through the system's ``ssh`` client, so the operator's own configuration, keys,
agent and known_hosts apply and wgtrace never sees a secret. Each host gets one master
connection (ControlMaster) whose socket lives in a private 0700 directory of this run, opened by
the login that also starts the host's one ``Shell``: every command wgtrace sends there goes
through that shell (the capture alone has a session of its own), so a host never holds more than
two sessions. ``BatchMode=yes``: ssh never asks anything (a password, a new host key); it fails
instead, and the failure becomes one sentence naming the host and what to do. Nothing a host
prints reaches a shell here: remote commands are argument lists quoted for the host's shell,
outputs are parsed as data.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

# Where sudo and a plain login may not look: tools like ip, tcpdump, iptables-save live there.
PATH_PRELUDE = 'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; export PATH; '


@dataclass
class Conn:
    """How to reach one host; ``problem`` is the sentence saying why it cannot be reached."""
    name: str
    target: str
    port: int | None
    config: str | None
    control_dir: str
    sudo: bool = False
    problem: str = ""
    rtt: float = 0.0                   # seconds for one command over the master (measured)
    notes: list[str] = field(default_factory=list)
    shell: "Shell | None" = field(default=None, repr=False)   # the host's one shell (Pool.add makes it)
    extra: tuple[str, ...] = ()        # more ssh words (an inventory's, checked): after ours, so ours win

    def ssh_argv(self, *extra: str) -> list[str]:
        argv = ["ssh"]
        if self.config:
            argv += ["-F", self.config]
        argv += ["-o", "BatchMode=yes", "-o", f"ControlPath={self.control_dir}/%C",
                 "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                 "-o", "LogLevel=INFO", "-T"]
        if self.port:
            argv += ["-p", str(self.port)]
        return argv + list(self.extra) + list(extra)

    def command(self, argv: list[str], privileged: bool = True) -> list[str]:
        """The local argv that runs ``argv`` on the host: one quoted word each for the host's
        shell, through ``sh -c`` so PATH is completed and the words reach exec unchanged."""
        words = (["sudo", "-n"] if self.sudo and privileged else []) + list(argv)
        remote = "sh -c " + shlex.quote(PATH_PRELUDE + 'exec "$@"') + " sh " + " ".join(shlex.quote(w) for w in words)
        return self.ssh_argv("-o", "ControlMaster=no", "--", self.target, remote)


def explain(name: str, target: str, text: str) -> str:
    """ssh's complaint as one sentence naming the host and what to do."""
    t = text.lower()
    if "permission denied" in t or "too many authentication failures" in t:
        return (f"{name} ({target}) refused the login: it would need a password or another key, and wgtrace "
                f"never types one; put your public key in the host's authorized_keys, or name the key with "
                f"IdentityFile in the ssh_config file (an ssh agent works too).")
    if "host key verification failed" in t or "remote host identification has changed" in t:
        return (f"{name} ({target}): its host key is not known (or changed): connect once by hand with "
                f"'ssh {target}' to check and accept it, or set StrictHostKeyChecking accept-new in ssh_config.")
    if "open failed" in t or "session request failed" in t or "refused by peer" in t:
        return (f"{name} ({target}): its sshd refused to open a session (MaxSessions in its sshd_config allows "
                f"none, or a ForceCommand refuses commands): wgtrace needs two sessions there; raise MaxSessions.")
    if "connection refused" in t:
        return f"{name} ({target}) refused the connection: no sshd listens there; start it, or fix the address or port."
    if "could not resolve" in t or "name or service not known" in t:
        return f"{name} ({target}): the name does not resolve; give an address, or an alias from ssh_config."
    if "timed out" in t or "no route to host" in t or "network is unreachable" in t:
        return f"{name} ({target}) cannot be reached from here (the connection timed out or has no route)."
    last = next((l.strip() for l in reversed(text.splitlines()) if l.strip()), "ssh failed")
    return f"{name} ({target}): ssh failed: {last[:200]}"


class Pool:
    """The connections of one run: opened together, closed together (``close``)."""

    def __init__(self, config: str | None = None) -> None:
        self.config = config
        self.control_dir = tempfile.mkdtemp(prefix="wgtrace-ssh-")     # 0700: the sockets are ours alone
        self.conns: dict[str, Conn] = {}

    def add(self, name: str, target: str, port: int | None = None, sudo: bool = False,
            extra: tuple[str, ...] = ()) -> Conn:
        c = Conn(name, target, port, self.config, self.control_dir, sudo, extra=tuple(extra))
        c.shell = Shell(c)
        self.conns[name] = c
        return c

    def open(self, first: dict[str, list[str]] | None = None, timeout: float = 20.0) -> dict[str, tuple]:
        """Log in to every host at once, each login opening the host's master connection and its
        shell together, with ``first[host]`` (else ``true``) written to the shell at once: it runs as
        soon as the host is logged into, while others still are. A host that cannot be reached gets
        its ``problem``; ``rtt`` is measured. (status, stdout, stderr) of each first command."""
        if not shutil.which("ssh"):
            for c in self.conns.values():
                c.problem = "this machine has no ssh client: install openssh-client."
            return {}
        for c in self.conns.values():
            c.shell.start(master=True)
        deadline = time.monotonic() + timeout
        jobs = {name: c.shell.submit((first or {}).get(name, ["true"])) for name, c in self.conns.items()}
        done = {}
        for name, job in jobs.items():
            done[name] = status, _, text = job.result(max(0.1, deadline - time.monotonic()))
            if status == 255 or (status != 0 and name not in (first or {})):
                self.conns[name].problem = explain(name, self.conns[name].target,
                                                   text or "the connection did not open in time")
        live = [c for c in self.conns.values() if not c.problem]
        t0 = time.monotonic()
        jobs = {c.name: c.shell.submit(["true"]) for c in live}
        for c in live:
            jobs[c.name].result(10)
            c.rtt = time.monotonic() - t0
        return done

    def close(self) -> None:
        """End every shell, and with it its master connection (all hung up first, then waited
        for), and remove the sockets' directory."""
        shells = [c.shell for c in self.conns.values() if c.shell is not None]
        for sh in shells:
            sh.hang_up()
        for sh in shells:
            sh.close()
        shutil.rmtree(self.control_dir, ignore_errors=True)


class ShellJob:
    """A command written to a host's shell, its answer still to come (``wait``)."""

    def __init__(self, shell: "Shell", argv: list[str], mark: str, failed: str = "") -> None:
        self.shell, self.argv, self.mark, self.failed = shell, argv, mark, failed
        self.gen = shell.gen

    def result(self, timeout: float = 15.0) -> tuple[int, str, str]:
        """(status, stdout, stderr in one line); status 255 and ssh's words when the shell is gone."""
        if self.failed:
            return 255, "", self.failed
        if self.gen != self.shell.gen:              # written to a shell that has ended since
            return 255, "", self.shell.broken or "the shell ended"
        return self.shell.collect(self.mark, timeout)

    def wait(self, timeout: float = 15.0) -> subprocess.CompletedProcess:
        code, out, err = self.result(timeout)
        return subprocess.CompletedProcess(self.argv, code, out, err)


class Shell:
    """One ``sh`` on a host, kept open for the run, that carries every command wgtrace sends there
    but the capture: the snapshot, the reads before and after the probe, the probe itself, a
    fix. A host then holds two sessions at most (this one and tcpdump's), far below a stock sshd's
    MaxSessions 10. Commands are quoted words, one line each, their stdin /dev/null; they are
    written at once (``submit``) and their answers read in order (``collect``), so many hosts
    work side by side and a host's reads follow one another without a round trip each. The first
    shell of a host also opens its master connection (``master``): the login and the shell in one go."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.proc: subprocess.Popen | None = None
        self.err = None
        self.buf = b""
        self.pending: list[str] = []
        self.done: dict[str, tuple[int, str, str]] = {}
        self.broken = ""
        self.gen = 0                  # which shell of this host: a job of an ended one gets no answer

    def start(self, master: bool = False) -> None:
        # the master is this very ssh (no ControlPersist): it ends when its shell does, after the
        # capture's session, also when wgtrace dies (its pipe closes, the host's sh ends)
        how = ["-o", "ControlMaster=auto"] if master else ["-o", "ControlMaster=no"]
        remote = "sh -c " + shlex.quote(PATH_PRELUDE + "exec sh")
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.conn.ssh_argv(*how, "--", self.conn.target, remote), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf, self.pending, self.done, self.broken = b"", [], {}, ""
        self.gen += 1

    def submit(self, argv: list[str], privileged: bool = False) -> ShellJob:
        """Write one command; its answer is read later. ``privileged``: through ``sudo -n`` when
        the host is logged into as another user."""
        import secrets
        if self.proc is None or (self.proc.poll() is not None and not self.pending):
            self.start()
        words = (["sudo", "-n"] if self.conn.sudo and privileged else []) + list(argv)
        mark = "@@wgt-" + secrets.token_hex(6)
        # stdout passes through; stderr is kept in $e and comes back on the mark's line
        line = ("{ e=$(" + " ".join(shlex.quote(w) for w in words) + " </dev/null 2>&1 1>&3 3>&-); r=$?; } 3>&1; "
                "[ -z \"$e\" ] || e=$(printf %s \"$e\" | tr '\\n' ' ' | cut -c1-400); "
                f"printf '\\n%s %s %s\\n' {mark} \"$r\" \"$e\"\n")
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except OSError:
            return ShellJob(self, list(argv), mark, self._gone())
        self.pending.append(mark)
        return ShellJob(self, list(argv), mark)

    def run(self, argv: list[str], timeout: float = 15.0, privileged: bool = False) -> tuple[int, str, str]:
        return self.submit(argv, privileged).result(timeout)

    def collect(self, mark: str, timeout: float) -> tuple[int, str, str]:
        import select
        deadline = time.monotonic() + timeout
        while mark not in self.done:
            if self.broken:
                return 255, "", self.broken
            self._parse()
            if mark in self.done:
                break
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.close()
                self.broken = f"{self.conn.name} did not answer within {timeout:.0f} s"
                return 255, "", self.broken
            try:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                self.broken = self._gone()
                return 255, "", self.broken
            self.buf += chunk
        return self.done.pop(mark)

    def _parse(self) -> None:
        """Answers complete in the buffer, in the order the commands were written."""
        while self.pending:
            mark = self.pending[0]
            i = self.buf.find(("\n" + mark + " ").encode())
            if i < 0:
                return
            j = self.buf.find(b"\n", i + 1)
            if j < 0:
                return
            _, code, err = (self.buf[i + 1:j].decode(errors="replace") + " ").split(" ", 2)
            self.done[mark] = (int(code) if code.isdigit() else 1, self.buf[:i].decode(errors="replace"), err.strip())
            self.buf = self.buf[j + 1:]
            self.pending.pop(0)

    def _gone(self) -> str:
        """Why the shell ended: ssh's own words (a refused login, a refused session…)."""
        if self.proc is not None:
            try:
                self.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                pass
        text = ""
        if self.err is not None:
            self.err.seek(0)
            text = self.err.read().decode(errors="replace")
        return text.strip() or "the connection closed"

    def hang_up(self) -> None:
        """Close its input: the host's sh ends (``close`` waits for it)."""
        if self.proc is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(2.0)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        if self.err is not None:
            self.err.close()
        self.proc, self.err = None, None
        self.gen += 1
