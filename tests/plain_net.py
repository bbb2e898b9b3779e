"""Reference networks built the way an operator builds one, without wgtrace: for ``--hosts`` tests.

Nothing here uses wgtrace's lab builder. A ``PlainNet`` only shells out, as argument lists, to
the tools a person types: ``ip netns``/``ip``, ``iptables``, ``nft``, ``sysctl``, ``wg``,
``wireguard-go`` (this kernel has no WireGuard module), ``wg-quick``, ``ssh-keygen`` and the
distribution's ``sshd``. Each machine is a network namespace ``pln-<name>-<node>``; its own
``/run`` (wireguard-go's sockets, sshd's pid file and privilege separation directory), ``/root``
(authorized_keys) and ``/etc/ssh`` (a copy of Debian's stock sshd_config with host keys of its
own: MaxSessions and MaxStartups stay stock) are directories under ``/run/pln-<name>/<node>``,
bind-mounted in a private mount namespace (``unshare -m``) for the processes of that machine.

A controller ``ctl`` has a bridge ``mgmt`` with one cable to every machine's ``mgmt0``
(172.31.0.0/24), a key, an ssh_config and a known_hosts of its own; wgtrace runs there
(``wgtrace(...)``) or on one of the machines (``wgtrace(..., on=node)``), as an operator runs it.
Nothing touches the host's namespace: every cable is made inside the namespaces, no host route,
rule or sysctl is changed, and ``down`` removes every namespace, process and directory (the
fixture calls it also after a failure).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MGMT = "172.31.0"
ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1", "LC_ALL": "C"}


class CommandFailed(RuntimeError):
    pass


def run(argv: list[str], check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                       env={**os.environ, **ENV})
    if check and r.returncode != 0:
        raise CommandFailed(f"{shlex.join(argv)}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
    return r


class PlainNet:
    def __init__(self, name: str) -> None:
        assert name.isalnum() and name.islower(), name
        self.name = name
        self.prefix = f"pln-{name}-"
        self.dir = Path(f"/run/pln-{name}")
        self.nodes: list[str] = []
        self.mgmt: dict[str, str] = {}          # node -> its management address
        self.keys: dict[str, tuple[str, str]] = {}   # node -> (private key file, public key)

    # --- machines and cables ------------------------------------------------------------------
    def ns(self, node: str) -> str:
        return self.prefix + node

    def home(self, node: str) -> Path:
        return self.dir / node / "root"

    def machine(self, *names: str) -> None:
        if not self.dir.exists():
            self.dir.mkdir(mode=0o700)
        for n in names:
            d = self.dir / n
            for sub in ("run", "root", "etc-ssh", "etc-wireguard"):
                (d / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
            run(["ip", "netns", "add", self.ns(n)])
            self.nodes.append(n)
            self.ip(n, "link", "set", "lo", "up")

    def ip(self, node: str, *args: str) -> str:
        return run(["ip", "-n", self.ns(node), *args]).stdout

    def cable(self, a: str, ia: str, b: str, ib: str, bridge_a: str | None = None) -> None:
        """A veth made inside ``a``'s namespace, its other end moved straight into ``b``'s."""
        self.ip(a, "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", self.ns(b))
        if bridge_a:
            self.ip(a, "link", "set", ia, "master", bridge_a)
        self.ip(a, "link", "set", ia, "up")
        self.ip(b, "link", "set", ib, "up")

    def bridge(self, node: str, name: str) -> None:
        self.ip(node, "link", "add", name, "type", "bridge")
        self.ip(node, "link", "set", name, "up")

    def addr(self, node: str, iface: str, *cidrs: str) -> None:
        for c in cidrs:
            self.ip(node, *(["-6"] if ":" in c else []), "addr", "add", c, "dev", iface,
                    *(["nodad"] if ":" in c else []))

    # --- commands on a machine ----------------------------------------------------------------
    def on(self, node: str, argv: list[str], check: bool = True, binds: tuple[str, ...] = ("run",),
           timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess:
        """``argv`` in the machine: its network namespace, and (``binds``) its own /run, /root,
        /etc/ssh, /etc/wireguard over the host's, in a private mount namespace."""
        where = {"run": "/run", "root": "/root", "etc-ssh": "/etc/ssh", "etc-wireguard": "/etc/wireguard"}
        pre = []
        for b in sorted(binds, key=lambda b: b == "run"):      # /run last: the others live under it
            pre += [str(self.dir / node / b), where[b]]
        script = 'while [ "$1" != -- ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"'
        return run(["ip", "netns", "exec", self.ns(node), "unshare", "-m", "sh", "-ec", script, "sh",
                    *pre, "--", *argv], check=check, timeout=timeout, input=input)

    def sysctl(self, node: str, *settings: str) -> None:
        self.on(node, ["sysctl", "-q", "-w", *settings])

    def iptables(self, node: str, *rule: str, v6: bool = False) -> None:
        self.on(node, ["ip6tables" if v6 else "iptables", *rule])

    def nft(self, node: str, script: str) -> None:
        self.on(node, ["nft", "-f", "-"], input=script)

    # --- WireGuard ------------------------------------------------------------------------------
    def key(self, node: str) -> str:
        """The machine's WireGuard public key (a key pair made once, in its own /root)."""
        if node not in self.keys:
            priv = run(["wg", "genkey"]).stdout.strip()
            path = self.home(node) / "wg.key"
            path.write_text(priv + "\n")
            path.chmod(0o600)
            self.keys[node] = ("/root/wg.key", run(["wg", "pubkey"], input=priv + "\n").stdout.strip())
        return self.keys[node][1]

    def wireguard(self, node: str, iface: str, addresses: list[str], port: int | None = None) -> None:
        """A wireguard-go interface, keyed, addressed, up (as a person does without wg-quick)."""
        self.key(node)
        self.on(node, ["wireguard-go", iface])
        self.on(node, ["wg", "set", iface, "private-key", "/root/wg.key", *(["listen-port", str(port)] if port else [])],
                binds=("run", "root"))
        self.addr(node, iface, *addresses)
        self.ip(node, "link", "set", iface, "up")

    def peer(self, node: str, iface: str, other: str, allowed: list[str], endpoint: str | None = None,
             keepalive: int | None = None) -> None:
        argv = ["wg", "set", iface, "peer", self.key(other), "allowed-ips", ",".join(allowed)]
        if endpoint:
            argv += ["endpoint", endpoint]
        if keepalive:
            argv += ["persistent-keepalive", str(keepalive)]
        self.on(node, argv)

    def wg_quick(self, node: str, iface: str, conf: str) -> None:
        """The real wg-quick with a configuration file in the machine's own /etc/wireguard."""
        path = self.dir / node / "etc-wireguard" / f"{iface}.conf"
        self.key(node)
        path.write_text(conf.replace("@PRIVATE@", (self.home(node) / "wg.key").read_text().strip()))
        path.chmod(0o600)
        self.on(node, ["wg-quick", "up", iface], binds=("run", "etc-wireguard"), timeout=60)

    def wg(self, node: str, *args: str) -> str:
        return self.on(node, ["wg", *args]).stdout

    def handshakes(self, node: str, want: int, limit: float = 15.0) -> None:
        """Until ``node`` has completed a handshake with ``want`` peers."""
        deadline = time.monotonic() + limit
        while True:
            out = self.wg(node, "show", "all", "latest-handshakes")
            if sum(1 for l in out.splitlines() if l.split()[-1:] != ["0"]) >= want:
                return
            if time.monotonic() > deadline:
                raise CommandFailed(f"{node}: fewer than {want} handshakes after {limit} s:\n{out}")
            time.sleep(0.05)

    def ping(self, node: str, dst: str, check: bool = True) -> bool:
        r = self.on(node, ["ping", "-q", "-c1", "-W2", dst], check=False)
        if check and r.returncode != 0:
            raise CommandFailed(f"{node} cannot ping {dst}: {r.stdout}{r.stderr}")
        return r.returncode == 0

    # --- sshd and the controller -----------------------------------------------------------------
    def sshd(self, node: str) -> None:
        """The distribution's sshd, its stock sshd_config (copied as it is), host keys of its own."""
        etc = self.dir / node / "etc-ssh"
        shutil.copy("/etc/ssh/sshd_config", etc / "sshd_config")
        if Path("/etc/ssh/sshd_config.d").is_dir():
            shutil.copytree("/etc/ssh/sshd_config.d", etc / "sshd_config.d", dirs_exist_ok=True)
        if Path("/etc/ssh/moduli").is_file():
            shutil.copy("/etc/ssh/moduli", etc / "moduli")
        for kind in ("ed25519", "ecdsa"):
            key = etc / f"ssh_host_{kind}_key"
            if not key.exists():
                run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"{node}", "-f", str(key)])
        (self.dir / node / "run" / "sshd").mkdir(mode=0o755, exist_ok=True)
        os.chmod(self.dir / node / "run", 0o755)
        os.chmod(self.dir / node / "root", 0o700)
        ssh = self.home(node) / ".ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        (ssh / "authorized_keys").write_text((self.home("ctl") / "id_ed25519.pub").read_text())
        (ssh / "authorized_keys").chmod(0o600)
        self.on(node, ["/usr/sbin/sshd"], binds=("run", "root", "etc-ssh"))

    def controller(self, hosts: list[str]) -> None:
        """``ctl`` with one cable to every machine's mgmt0, a key, ssh_config, and an sshd on each."""
        self.machine("ctl")
        self.bridge("ctl", "mgmt")
        self.addr("ctl", "mgmt", f"{MGMT}.254/24")
        home = self.home("ctl")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"wgtrace-plain-{self.name}",
             "-f", str(home / "id_ed25519")])
        (home / "ssh_config").write_text(
            "Host *\n  StrictHostKeyChecking accept-new\n"
            f"  UserKnownHostsFile {home}/known_hosts\n  IdentityFile {home}/id_ed25519\n  IdentitiesOnly yes\n")
        for i, n in enumerate(hosts, start=1):
            self.cable("ctl", f"m-{n}"[:15], n, "mgmt0", bridge_a="mgmt")
            self.mgmt[n] = f"{MGMT}.{i}"
            self.addr(n, "mgmt0", f"{MGMT}.{i}/24")
            self.sshd(n)

    def hosts_file(self, file: str, hosts: list[str], extra: dict[str, str] | None = None, top: str = "") -> str:
        """A hosts file in ctl's home, as docs/hosts.md's first example writes one; its path."""
        home = self.home("ctl")
        text = f'ssh_config = "{home}/ssh_config"\n{top}'
        for n in hosts:
            text += f'\n[hosts.{n}]\n' + (extra or {}).get(n, f'ssh = "root@{self.mgmt[n]}"\n')
        (home / file).write_text(text)
        return str(home / file)

    def wgtrace(self, *args: str, on: str = "ctl", timeout: float = 120) -> subprocess.CompletedProcess:
        """``python3 -m wgtrace ARGS`` on the controller (or on a machine, with its own /run)."""
        argv = [sys.executable, "-m", "wgtrace", *args]
        env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)}
        if on == "ctl":
            full = ["ip", "netns", "exec", self.ns(on), *argv]
        else:
            # the machine's own /run, with this network's directory still where it is (the hosts file)
            spot = self.dir / on / "run" / self.dir.name
            spot.mkdir(exist_ok=True)
            script = 'mount --bind "$1" "$2"; mount --rbind "$3" /run; shift 3; cd "$1"; shift; exec "$@"'
            full = ["ip", "netns", "exec", self.ns(on), "unshare", "-m", "sh", "-ec", script, "sh",
                    str(self.dir), str(spot), str(self.dir / on / "run"), str(REPO), *argv]
        return subprocess.run(full, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)

    def diagnose_here(self, hosts_file: str, src: str, dst: str, **kw):
        """The same diagnosis in this process, from the controller's namespace (for recording what
        the rules were given: tests/fixtures/hosts/)."""
        from wgtrace.diagnose.run import diagnose
        from wgtrace.nodes import nsexec
        from wgtrace.opener import open_network
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            nsexec.setns(f"/run/netns/{self.ns('ctl')}", nsexec.CLONE_NEWNET)
            with open_network(hosts=hosts_file) as net:
                return diagnose(net, src, dst, **kw)
        finally:
            nsexec.setns_fd(home, nsexec.CLONE_NEWNET)
            os.close(home)

    # --- what a host is, read in the machine itself (not over SSH) --------------------------------
    def state(self, node: str) -> dict[str, str]:
        """Addresses, routes of every table, policy rules, firewalls without counters, sysctls,
        WireGuard peers without their live fields: equal before and after a read-only diagnosis."""
        out = {}
        for key, argv in (("addr", ["ip", "-o", "addr", "show", "scope", "global"]), ("route", ["ip", "route", "show", "table", "all"]),
                          ("route6", ["ip", "-6", "route", "show", "table", "all"]), ("rule", ["ip", "rule", "show"]),
                          ("link", ["ip", "-o", "link", "show"]), ("iptables", ["iptables-save"]),
                          ("ip6tables", ["ip6tables-save"]), ("nft", ["nft", "list", "ruleset"]),
                          ("sysctl", ["sysctl", "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter",
                                      "net.ipv6.conf.all.forwarding"]),
                          ("wg", ["wg", "show", "all", "dump"])):
            text = self.on(node, argv, check=False).stdout
            if key in ("addr", "route", "route6"):      # link-local ones come and go by themselves (DAD)
                text = "\n".join(l for l in text.splitlines() if "fe80:" not in l and "ff00::" not in l)
            if key in ("iptables", "ip6tables"):
                text = "\n".join(l.split("] ", 1)[-1] if l.startswith("[") else l for l in text.splitlines()
                                 if not l.startswith("#"))
                text = "\n".join(l.split(" [")[0] if l.startswith(":") else l for l in text.splitlines())
            if key == "nft":
                text = "\n".join(l for l in text.splitlines() if "counter packets" not in l)
            if key == "wg":      # endpoints roam, handshakes and transfer counters move by themselves
                text = "\n".join(sorted("\t".join(f[:3] + f[4:5] + f[8:]) if len(f) == 9 else "\t".join(f[:1] + f[2:])
                                        for f in (l.split("\t") for l in text.splitlines())))
            if key == "link":
                text = "\n".join(" ".join(w for w in l.split() if not w.startswith("link/")) for l in text.splitlines())
            out[key] = text
        return out

    # --- the end ----------------------------------------------------------------------------------
    def namespaces(self) -> list[str]:
        d = Path("/run/netns")
        return sorted(p.name for p in d.glob(self.prefix + "*")) if d.is_dir() else []

    def down(self) -> None:
        """Every process of the network's namespaces (found by namespace, never by name), then the
        namespaces and the directory."""
        names = self.namespaces()
        for i in range(40):
            pids = []
            for n in names:
                pids += run(["ip", "netns", "pids", n], check=False).stdout.split()
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(int(p), 15 if i < 20 else 9)
                except (ProcessLookupError, ValueError):
                    pass
            time.sleep(0.1)
        for n in names:
            run(["ip", "netns", "del", n], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def leftovers(self) -> list[str]:
        return self.namespaces() + ([str(self.dir)] if self.dir.exists() else [])


class Sessions:
    """While the block runs, sample (every few ms) each machine's SSH sessions as its sshd sees them:
    the children of sshd's per-connection processes ("sshd: root@notty"); and which machines run
    tcpdump. ``peak``: machine -> most sessions at once; ``captured``: machines where tcpdump ran.
    ``where``: a PlainNet, or machine -> the path of its network namespace (a lab's nodes)."""

    def __init__(self, where) -> None:
        self.paths = where if isinstance(where, dict) else {n: f"/run/netns/{where.ns(n)}" for n in where.nodes}
        self.peak: dict[str, int] = {}
        self.captured: set[str] = set()
        self._stop = False

    def __enter__(self) -> "Sessions":
        import threading
        self.names = {}
        for n, path in self.paths.items():
            try:
                self.names[os.stat(path).st_ino] = n
            except OSError:
                pass
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        self.thread.join()

    def _loop(self) -> None:
        while not self._stop:
            procs = {}
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        st = f.read()
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().split(b"\0")[0].decode(errors="replace")
                    ino = os.stat(f"/proc/{pid}/ns/net").st_ino
                except OSError:
                    continue
                procs[int(pid)] = (int(st[st.rindex(")") + 2:].split()[1]), cmd, ino)
            counts: dict[str, int] = {}
            for pid, (ppid, cmd, ino) in procs.items():
                node = self.names.get(ino)
                if node is None:
                    continue
                if cmd.endswith("tcpdump") or " tcpdump" in cmd or cmd == "tcpdump":
                    self.captured.add(node)
                parent = procs.get(ppid)
                if parent and parent[1].startswith("sshd:") and "@" in parent[1] and not cmd.startswith("sshd"):
                    counts[node] = counts.get(node, 0) + 1
            for n, c in counts.items():
                self.peak[n] = max(self.peak.get(n, 0), c)
            time.sleep(0.003)
