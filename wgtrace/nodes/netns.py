"""A node of a lab: namespaces held by the node's init, with its own /run and /root, on this machine.

Commands join the init's network, PID, mount and UTS namespaces (nodes/nsexec.py), so they see
the node's processes alone and its own /run and /root; state is read in-process: netlink
(pyroute2) and /proc/sys opened from inside the network namespace with setns(2), the capture is
one AF_PACKET socket opened there (nodes/packetsock.py).
"""
from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

from ..addr import longest, same_address
from . import nsexec
from .base import CaptureSource, LinkInfo, Node, RouteInfo, RouteLookup

SHIM_DIR = Path(__file__).resolve().parent / "shim"
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROTOS = {2: "kernel", 3: "boot", 4: "static"}
RTN_TYPES = {1: "unicast", 2: "local", 3: "broadcast", 6: "blackhole", 7: "unreachable", 8: "prohibit"}
NUD_STATES = {0x01: "INCOMPLETE", 0x02: "REACHABLE", 0x04: "STALE", 0x08: "DELAY", 0x10: "PROBE",
              0x20: "FAILED", 0x40: "NOARP", 0x80: "PERMANENT"}


def kept_paths() -> list[str]:
    """What a node must still see under /root, which its own home hides: the Python running
    wgtrace (pyenv installs it there) and wgtrace itself (a checkout in root's home)."""
    here = Path(__file__).resolve().parent.parent
    want = {os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, str(here)}
    keep = set()
    for p in want:
        parts = Path(p).parts
        if len(parts) > 2 and parts[:2] == ("/", "root"):
            keep.add(str(Path(*parts[:3])))
    return sorted(keep)


class NetnsNode(Node):
    kind = "netns"

    def __init__(self, netns_path: str, base: Path, name: str, lab: str,
                 wg_impl: str = "kernel", wg_uid: int | None = None,
                 init: tuple[int, int] | None = None) -> None:
        self.name = name
        self.lab = lab
        self.wg_impl = wg_impl
        self.netns_path = netns_path
        self.base = base                      # the node's directory: its run/ and root/
        self.wg_uid = wg_uid                  # wireguard-go runs as this user (None: as root)
        self.init = init                      # (pid, PID namespace inode) of the node's init
        self._ipr = None                      # one netlink socket for the state readers, kept open
        self._names: dict[int, str] | None = None

    @property
    def run_dir(self) -> Path:
        """Bind-mounted on the node's /run (wireguard-go's sockets, sshd's pid file)."""
        return self.base / "run"

    @property
    def home_dir(self) -> Path:
        """Bind-mounted on the node's /root (./private, ./public)."""
        return self.base / "root"

    # --- processes --------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        path = BASE_PATH
        if self.wg_impl == "wireguard-go":
            path = f"{SHIM_DIR}:{path}"
        env = {k: v for k, v in os.environ.items() if k in ("TERM", "LANG", "LC_ALL", "COLUMNS", "LINES")}
        env.update(PATH=path, HOME="/root", WGTRACE_NODE=self.name, WGTRACE_LAB=self.lab,
                   WGTRACE_REAL_IP=shutil.which("ip", path=BASE_PATH) or "/usr/sbin/ip",
                   WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1")
        if self.wg_uid is not None and self.wg_impl == "wireguard-go":
            env["WGTRACE_WG_UID"] = str(self.wg_uid)
        if self.wg_impl == "wireguard-go":     # wg-quick's own fallback, through the shim
            env["WG_QUICK_USERSPACE_IMPLEMENTATION"] = str(SHIM_DIR / "wg-quick-userspace")
        return env

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        env = self.env()
        env.update(kw.pop("env", {}) or {})
        fd = self.init_fd()
        try:
            with nsexec.children_in(fd):
                # Popen returns once the child has executed (or failed to): the pidfd is done with
                return subprocess.Popen(list(argv), preexec_fn=nsexec.joiner(fd), env=env, **kw)
        except ProcessLookupError:          # the init died since it was checked
            raise self._stopped() from None
        finally:
            os.close(fd)

    def init_fd(self) -> int:
        """A new pidfd of the node's init, checked to be it (a pid alone may have been reused).
        Not kept: node objects are made freely and dropped without ``close``."""
        fd = None
        if self.init:
            try:
                fd = os.pidfd_open(self.init[0])
            except OSError:
                pass
            if fd is not None and not nsexec.is_init(*self.init):
                os.close(fd)
                fd = None
        if fd is None:
            raise self._stopped()
        return fd

    def _stopped(self) -> Exception:
        from ..errors import LabStateError
        return LabStateError(f"node {self.name} of lab {self.lab} has stopped (its init process is gone): "
                             f"run 'wgtrace lab down {self.lab}' and bring it up again.")

    def alive(self) -> bool:
        """Is the node's init running (and with it, the node)?"""
        return bool(self.init) and nsexec.is_init(*self.init)

    def host_pid(self, node_pid: int) -> int | None:
        """The pid, as this machine sees it, of the node's process ``node_pid`` (as the node sees
        it, e.g. in a pid file in its /run); None if the node has no such process."""
        if not self.alive():
            return None
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (nsexec.ns_id(entry, "pid") or (0, 0))[1] == self.init[1]:
                if nsexec.nspid(entry)[-1:] == [node_pid]:
                    return int(entry)
        return None

    # --- inside the namespace, in this process ------------------------------------------
    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Switch this thread into the node's network namespace (for opening sockets); sockets
        opened here stay in the node."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            nsexec.setns(self.netns_path, nsexec.CLONE_NEWNET)
            try:
                yield
            finally:
                nsexec.setns_fd(home, nsexec.CLONE_NEWNET)
        finally:
            os.close(home)

    def nl(self):
        """The node's netlink socket for reading state, opened once (each open costs a setns)."""
        if self._ipr is None:
            from pyroute2 import IPRoute
            with self.inside():
                self._ipr = IPRoute()
        return self._ipr

    def names(self) -> dict[int, str]:
        if self._names is None:
            self._names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in self.nl().get_links()}
        return self._names

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
        self._ipr, self._names = None, None

    # --- state ----------------------------------------------------------------------------
    def links(self) -> dict[str, LinkInfo]:
        ipr = self.nl()
        addrs: dict[int, list[str]] = {}
        for a in ipr.get_addr():                  # both families; link-local is nobody's network
            ip = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
            if ip and not (a["family"] == socket.AF_INET6 and ip.lower().startswith("fe80:")):
                addrs.setdefault(a["index"], []).append(f"{ip}/{a['prefixlen']}")
        raw = ipr.get_links()
        names = self._names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in raw}
        out = {}
        for l in raw:
            info = l.get_attr("IFLA_LINKINFO")
            master = l.get_attr("IFLA_MASTER")
            out[names[l["index"]]] = LinkInfo(names[l["index"]], bool(l["flags"] & 1), l.get_attr("IFLA_MTU"),
                                              addrs.get(l["index"], []), l["index"],
                                              (info.get_attr("IFLA_INFO_KIND") if info else "") or "",
                                              names.get(master) if master else None)
        return out

    def routes(self, table: int = 254, family: int = 4) -> list[RouteInfo]:
        names = self.names()
        out = []
        af = socket.AF_INET6 if family == 6 else socket.AF_INET
        for r in self.nl().get_routes(family=af, table=table):
            if family == 6 and r["type"] != 1 and (r.get_attr("RTA_TABLE") or table) == 255:
                continue                  # IPv6's local table entries (anycast, multicast)
            dst = r.get_attr("RTA_DST")
            if family == 6 and dst and (dst.lower().startswith("fe80:") or dst.lower().startswith("ff")):
                continue                  # link-local and multicast: every interface has them
            out.append(RouteInfo(f"{dst}/{r['dst_len']}" if dst else "default", r.get_attr("RTA_GATEWAY"),
                                 names.get(r.get_attr("RTA_OIF")), PROTOS.get(r["proto"], str(r["proto"])),
                                 r.get_attr("RTA_TABLE") or table, family))
        return out

    def route_get(self, dst: str, src: str | None = None, iif: str | None = None) -> RouteLookup:
        names = self.names()
        kw: dict = {"dst": dst}
        if iif:
            idx = [i for i, n in names.items() if n == iif]
            if not idx:
                return RouteLookup(False, error=f"no interface {iif}")
            kw["iif"] = idx[0]
            if src:
                kw["src"] = src
        try:
            r = self.nl().route("get", **kw)[0]
        except Exception as e:       # NetlinkError: the kernel's refusal is the answer
            code = getattr(e, "code", 0)
            return RouteLookup(False, error=os.strerror(code) if code else str(e))
        oif = r.get_attr("RTA_OIF")
        return RouteLookup(True, names.get(oif) if oif else None, r.get_attr("RTA_GATEWAY"),
                           RTN_TYPES.get(r["type"], str(r["type"])), prefsrc=r.get_attr("RTA_PREFSRC"))

    def neighbours(self, family: int = 4) -> list[tuple[str, str, str]]:
        names = self.names()
        af = socket.AF_INET6 if family == 6 else socket.AF_INET
        return [(names.get(n["ifindex"], "?"), n.get_attr("NDA_DST"), NUD_STATES.get(n["state"], str(n["state"])))
                for n in self.nl().get_neighbours(family=af)]

    def sysctls(self, keys: Sequence[str]) -> dict[str, str]:
        out = {}
        with self.inside():               # /proc/sys/net follows the opener's namespace
            for key in keys:
                try:
                    with open("/proc/sys/" + key.replace(".", "/")) as f:
                        out[key] = f.read().strip()
                except OSError:
                    out[key] = ""
        return out

    @property
    def wg_in_process(self) -> bool:
        return self.wg_impl == "wireguard-go"

    def wg_soon(self):
        if self.wg_in_process:
            return self.wg                    # its control socket answers at once: nothing to start
        return super().wg_soon()

    def wg(self, pubkey: bool = True):
        """wireguard-go answers on its control socket in the node's own /run: read it here, no
        program started; kernel WireGuard: ``wg show all dump`` in the node."""
        if not self.wg_in_process:
            return super().wg()
        from .uapi import read_uapi
        sockdir = self.run_dir / "wireguard"
        found = [read_uapi(p, pubkey=pubkey) for p in sorted(sockdir.glob("*.sock"))] if sockdir.is_dir() else []
        return [w for w in found if w is not None]

    def wg_ifaces(self) -> list[str]:
        """wireguard-go leaves one UAPI socket per interface in the node's own /run/wireguard;
        kernel WireGuard interfaces have the link kind "wireguard"."""
        names = []
        sockdir = self.run_dir / "wireguard"
        if sockdir.is_dir():
            names = sorted(p.stem for p in sockdir.glob("*.sock"))
        if self.wg_impl == "kernel":
            names += [l.name for l in self.links().values() if l.kind == "wireguard"]
        return names

    def conntrack(self, src: str, dst: str, ident: int | None = None) -> list[tuple[str, str, str, str]]:
        from pyroute2 import Conntrack

        def nla(attrs) -> dict:          # netlink attributes come as (name, value[, flags]) tuples
            return {a[0]: a[1] for a in attrs}

        def tup(attrs, key):
            ip = nla(nla(nla(attrs)[key]["attrs"])["CTA_TUPLE_IP"]["attrs"])
            return ip.get("CTA_IP_V4_SRC") or ip.get("CTA_IP_V6_SRC"), ip.get("CTA_IP_V4_DST") or ip.get("CTA_IP_V6_DST")

        def flow_id(attrs):              # the ICMP id, else the source port, of the original direction
            p = nla(nla(nla(attrs)["CTA_TUPLE_ORIG"]["attrs"]).get("CTA_TUPLE_PROTO", {}).get("attrs", []))
            return p.get("CTA_PROTO_ICMP_ID") or p.get("CTA_PROTO_ICMPV6_ID") or p.get("CTA_PROTO_SRC_PORT")
        with self.inside():          # pyroute2 opens the netlink socket lazily: dump while inside
            ct = Conntrack(nfgen_family=socket.AF_INET6 if ":" in src else socket.AF_INET)
            try:
                entries = list(ct.dump())
            except Exception:        # no conntrack in this kernel: no evidence, not an error
                entries = []
            finally:
                ct.close()
        out = []
        try:
            for e in entries:
                o = tup(e["attrs"], "CTA_TUPLE_ORIG")
                if same_address(o[0] or "", src) and same_address(o[1] or "", dst) and \
                        (ident is None or flow_id(e["attrs"]) == ident):
                    out.append((*o, *tup(e["attrs"], "CTA_TUPLE_REPLY")))
        except (KeyError, TypeError):
            pass
        return out

    # --- the probe ------------------------------------------------------------------------
    def open_capture(self) -> CaptureSource:
        from .packetsock import PacketSocket
        with self.inside():
            return PacketSocket()

    def prepare_capture(self, source: CaptureSource) -> None:
        from .packetsock import wait_for_timestamps
        with self.inside():
            wait_for_timestamps(source)

    def source_route(self, dst: str) -> tuple[RouteLookup, str]:
        """The kernel picks the source address for a connected UDP socket; the route itself is
        read from /proc (no netlink: this is on every probe's path). The lookup is the main
        table's: policy routing (a full tunnel's table) shows in the capture, not here."""
        af = socket.AF_INET6 if ":" in dst else socket.AF_INET
        with self.inside():
            s = socket.socket(af, socket.SOCK_DGRAM)
            try:
                s.connect((dst, 9))
                src = s.getsockname()[0]
            except OSError as e:
                return RouteLookup(False, error=os.strerror(e.errno or errno.EHOSTUNREACH)), \
                    os.strerror(e.errno or errno.EHOSTUNREACH)
            finally:
                s.close()
            table = self._proc_table(6 if af == socket.AF_INET6 else 4)
        best = longest(dst, table, key=lambda row: row[0])
        return RouteLookup(True, best[2] if best else None, best[1] if best else None, prefsrc=src), ""

    def route_table(self, family: int = 4) -> list[tuple[str, str | None, str | None]]:
        """The main table from /proc (no netlink: this is cheap)."""
        with self.inside():
            return self._proc_table(family)

    @staticmethod
    def _proc_table(family: int) -> list[tuple[str, str | None, str | None]]:
        """Call inside the namespace: /proc/thread-self/net follows the thread's namespace."""
        out = []
        if family == 4:
            with open("/proc/thread-self/net/route") as f:
                rows = f.read().splitlines()[1:]
            for line in rows:
                f = line.split()
                net, gw = (socket.inet_ntoa(struct.pack("<I", int(x, 16))) for x in (f[1], f[2]))
                plen = bin(int(f[7], 16)).count("1")
                out.append((f"{net}/{plen}", None if gw == "0.0.0.0" else gw, f[0]))
            return out
        try:
            with open("/proc/thread-self/net/ipv6_route") as f:
                rows = f.read().splitlines()
        except OSError:
            return out                    # no IPv6 in this kernel
        for line in rows:
            # dst dst_len src src_len nexthop metric refcnt use flags dev; main table only
            f = line.split()
            if len(f) < 10 or int(f[8], 16) & 0x0200:       # RTF_REJECT: unreachable
                continue
            dst = str(ipaddress.IPv6Address(bytes.fromhex(f[0])))
            gw = str(ipaddress.IPv6Address(bytes.fromhex(f[4])))
            if dst.startswith(("fe80:", "ff")) or f[9] == "lo":
                continue
            out.append((f"{dst}/{int(f[1], 16)}", None if gw == "::" else gw, f[9]))
        return out

    def send_raw(self, packet: bytes, dst: str) -> tuple[float, str]:
        af = socket.AF_INET6 if ":" in dst else socket.AF_INET
        with self.inside():
            # IPPROTO_RAW: the packet carries its own IP header (IPv6's too, on Linux)
            tx = socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_RAW)
        try:
            t = time.time()
            tx.sendto(packet, (dst, 0))
            return t, ""
        except OSError as e:
            return time.time(), os.strerror(e.errno or errno.EIO)
        finally:
            tx.close()
