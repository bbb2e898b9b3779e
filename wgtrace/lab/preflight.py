"""What this machine has: root, the tools a lab needs, which WireGuard to use."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import MissingTool, NotRoot
from ..nodes.netns import BASE_PATH

# tool -> Debian package that provides it
TOOLS = {
    "ip": "iproute2",
    "wg": "wireguard-tools",
    "wg-quick": "wireguard-tools",      # for interfaces with wg_quick = true (and bash, which it is)
    "iptables": "iptables",
    "nft": "nftables",
    "tcpdump": "tcpdump",
    "ping": "iputils-ping",
    "wireguard-go": "wireguard-go",
    "sshd": "openssh-server",
    "catatonit": "catatonit",
}
REQUIRED = ("ip", "wg", "iptables", "catatonit")     # catatonit: each node's init (nodes/nsinit.py)


def which(tool: str) -> str | None:
    return shutil.which(tool, path=BASE_PATH)


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRoot("wgtrace builds network namespaces and needs root: run it with sudo.")


def require_tools(wg_impl: str, nft: bool = False) -> None:
    """``nft``: the lab writes native nftables tables."""
    needed = list(REQUIRED) + (["wireguard-go"] if wg_impl == "wireguard-go" else []) + (["nft"] if nft else [])
    missing = [t for t in needed if not which(t)]
    if missing:
        pkgs = " ".join(sorted({TOOLS[t] for t in missing}))
        raise MissingTool(f"missing {', '.join(missing)}: install with "
                          f"'apt-get install --no-install-recommends {pkgs}'.")


def kernel_has_wireguard() -> bool:
    """Try to make a WireGuard link in a throwaway namespace (never in the host's)."""
    if os.environ.get("WGTRACE_WG") in ("kernel", "wireguard-go"):
        return os.environ["WGTRACE_WG"] == "kernel"
    if os.path.isdir("/sys/module/wireguard"):
        return True
    ip = which("ip")
    if not ip:
        return False
    r = subprocess.run(["unshare", "--net", ip, "link", "add", "wgprobe", "type", "wireguard"],
                       capture_output=True)
    return r.returncode == 0


def can_switch_user() -> bool:
    """Can wireguard-go run as a user of its node's own, keeping CAP_NET_ADMIN? (root in a user
    namespace that maps the high uids, and setpriv from util-linux)."""
    if os.environ.get("WGTRACE_WG_USERS") == "0" or os.geteuid() != 0 or not which("setpriv"):
        return False
    try:
        with open("/proc/self/uid_map") as f:
            for line in f:
                inside, _, count = (int(x) for x in line.split())
                if inside == 0 and count >= 2_000_000_000:
                    return True
    except (OSError, ValueError):
        pass
    return False


def choose_wg_impl() -> str:
    return "kernel" if kernel_has_wireguard() else "wireguard-go"


@dataclass
class Report:
    root: bool
    wg_impl: str
    iptables_variant: str
    tools: dict[str, str | None]     # tool -> path or None


def machine_report() -> Report:
    tools = {t: which(t) for t in TOOLS}
    variant = "missing"
    if tools["iptables"]:
        out = subprocess.run([tools["iptables"], "--version"], capture_output=True, text=True).stdout
        variant = "nf_tables" if "nf_tables" in out else "legacy" if "legacy" in out else out.strip()
    return Report(os.geteuid() == 0, choose_wg_impl(), variant, tools)


def inotify_use() -> tuple[int, int]:
    """(inotify instances open by root, fs.inotify.max_user_instances).

    wireguard-go watches its UAPI socket with inotify, one instance per interface, and the
    limit is per user (128 by default): past it, a new wireguard-go dies at start with "too
    many open files" and its wg0 vanishes. Counted from /proc, read only."""
    try:
        with open("/proc/sys/fs/inotify/max_user_instances") as f:
            limit = int(f.read())
    except (OSError, ValueError):
        return 0, 0
    used = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid != 0:
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify":
                        used += 1
                except OSError:
                    pass
        except OSError:
            continue
    return used, limit


# What one lab piece costs, measured here: wireguard-go ~5 MB RSS and 12 threads; sshd ~6 MB;
# a node (its namespaces, veths, bridge and init) well under 1 MB. Estimates are rounded up.
COST_MB = {"wireguard-go": 8, "sshd": 8, "node": 2}
COST_TASKS = {"wireguard-go": 14, "sshd": 2, "node": 2}


def _meminfo_mb(key: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def check_capacity(lab, wg_impl: str) -> None:
    """Refuse, before anything is built, a lab this machine cannot hold: memory, processes,
    namespaces. One sentence naming the limit (fast: /proc reads only)."""
    from ..errors import LabStateError
    nodes = len(lab.nodes)
    wg = sum(len(n.wireguard) for n in lab.nodes.values()) if wg_impl == "wireguard-go" else 0
    ssh = sum(1 for n in lab.nodes.values() for s in n.services)
    need_mb = nodes * COST_MB["node"] + wg * COST_MB["wireguard-go"] + ssh * COST_MB["sshd"]
    avail = _meminfo_mb("MemAvailable")
    if avail is not None and need_mb > avail * 0.8:
        raise LabStateError(f"lab {lab.name!r} needs about {need_mb} MB of memory ({nodes} nodes, {wg} "
                            f"wireguard-go) and this machine has {avail} MB available.")
    tasks = nodes * COST_TASKS["node"] + wg * COST_TASKS["wireguard-go"] + ssh * COST_TASKS["sshd"]
    limit = min(x for x in (_read_int("/proc/sys/kernel/pid_max"), _read_int("/proc/sys/kernel/threads-max"),
                            1 << 30) if x)
    running = len([p for p in os.listdir("/proc") if p.isdigit()])
    if running + tasks > limit * 0.9:
        raise LabStateError(f"lab {lab.name!r} needs about {tasks} processes and threads; with {running} "
                            f"running, that is past this machine's limit of {limit} (kernel.pid_max/threads-max).")
    for kind, word in (("net", "network"), ("pid", "PID"), ("mnt", "mount"), ("uts", "UTS")):
        most = _read_int(f"/proc/sys/user/max_{kind}_namespaces")     # every node has one of each
        if most is not None and nodes > most:
            raise LabStateError(f"lab {lab.name!r} has {nodes} nodes, more than the {most} {word} namespaces "
                                f"this machine allows (user.max_{kind}_namespaces).")
