"""SSH connections to real hosts: one multiplexed OpenSSH connection per host, opened in parallel.

Everything goes through the system's ``ssh`` client, so the operator's own configuration, keys,
agent and known_hosts apply and wgtrace never sees a secret. Each host gets one master
connection (ControlMaster) whose socket lives in a private 0700 directory of this run; every
command after that is a new session on it, without a new login. ``BatchMode=yes``: ssh never
asks anything (a password, a new host key); it fails instead, and the failure becomes one
sentence naming the host and what to do. Nothing a host prints reaches a shell here: remote
commands are argument lists quoted for the host's shell, outputs are parsed as data.
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
PERSIST = 120          # seconds an idle master outlives us if we die without closing it


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

    def ssh_argv(self, *extra: str) -> list[str]:
        argv = ["ssh"]
        if self.config:
            argv += ["-F", self.config]
        argv += ["-o", "BatchMode=yes", "-o", f"ControlPath={self.control_dir}/%C",
                 "-o", "ConnectTimeout=5", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
                 "-o", "LogLevel=ERROR", "-T"]
        if self.port:
            argv += ["-p", str(self.port)]
        return argv + list(extra)

    def command(self, argv: list[str], privileged: bool = True) -> list[str]:
        """The local argv that runs ``argv`` on the host: one quoted word each for the host's
        shell, through ``sh -c`` so PATH is completed and the words reach exec unchanged."""
        words = (["sudo", "-n"] if self.sudo and privileged else []) + list(argv)
        remote = "sh -c " + shlex.quote(PATH_PRELUDE + 'exec "$@"') + " sh " + " ".join(shlex.quote(w) for w in words)
        return self.ssh_argv("-o", "ControlMaster=no", "--", self.target, remote)

    def script(self) -> list[str]:
        """The local argv that runs a POSIX sh script on the host (the script comes on stdin)."""
        return self.ssh_argv("-o", "ControlMaster=no", "--", self.target, "sh -s")


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

    def add(self, name: str, target: str, port: int | None = None, sudo: bool = False) -> Conn:
        c = Conn(name, target, port, self.config, self.control_dir, sudo)
        self.conns[name] = c
        return c

    def open(self, timeout: float = 20.0) -> None:
        """Log in to every host at once; a host that cannot be reached gets its ``problem``."""
        if not shutil.which("ssh"):
            for c in self.conns.values():
                c.problem = "this machine has no ssh client: install openssh-client."
            return
        jobs = {name: (c.ssh_argv("-o", "ControlMaster=auto", "-o", f"ControlPersist={PERSIST}", "-N", "-f",
                                  "--", c.target), None) for name, c in self.conns.items()}
        for name, (status, _, text) in run_all(jobs, timeout).items():
            if status != 0:
                self.conns[name].problem = explain(name, self.conns[name].target,
                                                   text or "the connection did not open in time")

    def close(self) -> None:
        """End every master connection (``ssh -O exit``) and remove the sockets' directory."""
        procs = []
        for c in self.conns.values():
            if os.path.isdir(self.control_dir):
                procs.append(subprocess.Popen(c.ssh_argv("-O", "exit", "--", c.target), stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.control_dir, ignore_errors=True)


def run_all(jobs: dict[str, tuple[list[str], bytes | None]], timeout: float = 20.0) -> dict[str, tuple[int, str, str]]:
    """Run one local argv per host at once, each with its stdin; (status, stdout, stderr) per host.
    Outputs go to files, not pipes: nothing stalls on a full pipe, whatever a host prints."""
    procs = {}
    for name, (argv, stdin) in jobs.items():
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                             stdout=out, stderr=err, start_new_session=True)
        if stdin is not None:
            try:
                p.stdin.write(stdin)
                p.stdin.close()
            except OSError:          # it died at once: its status says why
                pass
        procs[name] = (p, out, err)
    deadline = time.monotonic() + timeout
    res = {}
    for name, (p, out, err) in procs.items():
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        out.seek(0)
        err.seek(0)
        res[name] = (p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"))
        out.close()
        err.close()
    return res


class Shell:
    """One ``sh`` on a host, kept open for the run: the many small reads after a probe (route
    lookups, the ARP table, conntrack) are answered on it without a new SSH session each
    (a session costs an ssh client here, ~15 ms; a line on this shell, a round trip). Commands
    are quoted words, as everywhere; their stdin is /dev/null, so they cannot read ours."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.proc: subprocess.Popen | None = None
        self.buf = b""

    def _start(self) -> None:
        self.proc = subprocess.Popen(self.conn.command(["sh"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""

    def run(self, argv: list[str], timeout: float = 15.0) -> tuple[int, str] | None:
        """(status, stdout and stderr together), or None when the shell is not usable."""
        import secrets
        import select
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        mark = ("@@wgt-" + secrets.token_hex(6)).encode()
        line = " ".join(shlex.quote(w) for w in argv) + f" </dev/null 2>&1; printf '\\n%s %s\\n' {mark.decode()} $?\n"
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except OSError:
            self.close()
            return None
        deadline = time.monotonic() + timeout
        while mark not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.close()
                return None
            try:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                self.close()
                return None
            self.buf += chunk
        head, _, rest = self.buf.partition(mark)
        code, _, self.buf = rest.partition(b"\n")
        text = head.decode(errors="replace")
        return (int(code) if code.strip().isdigit() else 1), text[:-1] if text.endswith("\n") else text

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(1.0)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc = None
