"""A real host's state in one SSH round trip: the script that reads it, and the parsers.

The script is plain POSIX sh of iproute2, /proc and the tools a Linux host already has; it only
reads (nothing is written on the host, not even a temporary file). Each section is framed by a
random marker and ends with its exit status and the first words of its stderr, so a tool that
is missing or refused is known precisely. WireGuard's dump passes through awk *on the host*
first: the private key (and any preshared key) is replaced there and never leaves the machine.
"""
from __future__ import annotations

import ipaddress
import json
import re
import secrets
import shlex
from dataclasses import dataclass, field

from .base import LinkInfo, RouteInfo, RouteLookup
from .wgstate import WgIface, parse_dump

# Lines of `wg show all dump`: an interface has 5 fields (the 2nd is its private key), a peer 9
# (the 3rd is its preshared key). Anything else is dropped: unknown lines never leave the host.
REDACT_AWK = ('BEGIN { FS = "\\t"; OFS = "\\t" } '
              'NF == 5 { $2 = "(hidden)"; print; next } '
              'NF == 9 { if ($3 != "(none)") $3 = "(hidden)"; print; next }')
TOOLS = ("ip", "wg", "python3", "tcpdump", "iptables-save", "ip6tables-save", "nft", "conntrack", "awk",
         "bridge", "timeout", "resolvconf")
# wg-quick files, read on the host with their secrets left there: PrivateKey and PresharedKey lines
# are dropped, and any other word shaped like a key (in a hook) is replaced; PublicKey lines stay.
WG_FILE_MARK = "@@wgtrace-file "
KEY_RE_AWK = "[A-Za-z0-9+\\/]" * 43 + "="
WG_FILES_AWK = ('FNR == 1 { print "' + WG_FILE_MARK + '" FILENAME } /^@@/ { next } '
                '{ k = $0; sub(/=.*/, "", k); gsub(/[ \\t]/, "", k); k = tolower(k) } '
                'k == "privatekey" || k == "presharedkey" { next } '
                'k != "publickey" { gsub(/' + KEY_RE_AWK + '/, "(key)") } { print }')
WG_FILES_SH = ('for f in /etc/wireguard/*.conf; do [ -f "$f" ] || continue; '
               f'awk {shlex.quote(WG_FILES_AWK)} "$f" | head -c 1048576; done; true')
SYSCTL_FILES = ("/proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/icmp_echo_ignore_all "
                "/proc/sys/net/ipv4/conf/*/rp_filter /proc/sys/net/ipv4/conf/*/send_redirects "
                "/proc/sys/net/ipv6/conf/*/forwarding /proc/sys/net/ipv6/conf/*/disable_ipv6")
TABLES = {"main": 254, "local": 255, "default": 253}
PROTOS = {"kernel": "kernel", "boot": "boot", "static": "static", "2": "kernel", "3": "boot", "4": "static"}
FIREWALL = "sec iptables {s}iptables-save -c\nsec ip6tables {s}ip6tables-save -c\nsec nft {s}nft -j list ruleset\n"


def redact_command(sudo: str) -> str:
    """``wg show all dump`` with every secret replaced on the host, as one sh command."""
    return f"{sudo}wg show all dump | awk {shlex.quote(REDACT_AWK)}"


def snapshot_script(sudo: bool, firewall: bool = True) -> tuple[str, str]:
    """(the script, its section marker). ``firewall``: read the firewall too (a network that is
    watched only along the probe's path reads it there, before the probe, and nowhere else)."""
    mark = "@@wgtrace-" + secrets.token_hex(6)
    s = "sudo -n " if sudo else ""
    tools = " ".join(TOOLS)
    script = f"""
M={mark}
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; export PATH
sec() {{ n=$1; shift; printf '\\n%s %s\\n' "$M" "$n"
  {{ e=$("$@" 2>&1 1>&3 3>&-); r=$?; }} 3>&1
  [ -z "$e" ] || e=$(printf %s "$e" | tr '\\n\\t' '  ' | cut -c1-300)
  printf '\\n%s end %s %s\\n' "$M" "$r" "$e"; }}
tools() {{ for t in {tools}; do p=$(command -v "$t" 2>/dev/null) && [ -f "$p" ] && [ -x "$p" ] && echo "$t"; done; }}
wgsock() {{ ls /run/wireguard 2>/dev/null; true; }}
wgdump() {{ {redact_command(s)}; }}
sysc() {{ grep -H . {SYSCTL_FILES} 2>/dev/null; true; }}
conn() {{ echo "$SSH_CONNECTION"; }}
WGFILES={shlex.quote(WG_FILES_SH)}
sec id id -u
sec tools tools
{"sec sudo sudo -n true" if sudo else ""}
sec link ip -j -d link show
sec addr ip -j addr show
sec route ip -j -4 route show table all
sec route6 ip -j -6 route show table all
sec rule ip -j -4 rule show
sec rule6 ip -j -6 rule show
sec fdb bridge -j fdb show
sec sysctl sysc
sec wgsock wgsock
sec wgifaces {s}wg show interfaces
sec wgdump wgdump
sec wgfiles {s}sh -c "$WGFILES"
{FIREWALL.format(s=s) if firewall else ""}sec conn conn
sec clock date +%s.%N
"""
    return script, mark


@dataclass
class Section:
    out: str
    status: int
    err: str


def split_sections(text: str, mark: str) -> dict[str, Section]:
    out: dict[str, Section] = {}
    name, lines = None, []
    for line in text.split("\n"):
        if line.startswith(mark + " "):
            rest = line[len(mark) + 1:]
            if rest.startswith("end ") and name is not None:
                _, _, tail = rest.partition(" ")
                code, _, err = tail.partition(" ")
                out[name] = Section("\n".join(lines).strip("\n"), int(code) if code.isdigit() else 1, err.strip())
                name, lines = None, []
            else:
                name, lines = rest.strip(), []
        elif name is not None:
            lines.append(line)
    return out


def _json(text: str) -> list:
    try:
        v = json.loads(text) if text.strip() else []
    except ValueError:
        return []
    return v if isinstance(v, list) else []


@dataclass
class HostState:
    """What the snapshot found; ``raw`` keeps the iproute2 records discovery needs."""
    uid: int = -1
    tools: set[str] = field(default_factory=set)
    sudo_error: str = ""
    links: dict[str, LinkInfo] = field(default_factory=dict)
    macs: dict[str, str] = field(default_factory=dict)
    routes: list[RouteInfo] = field(default_factory=list)
    route_types: list[str] = field(default_factory=list)    # beside routes: unicast, local, blackhole…
    rules: list[dict] = field(default_factory=list)
    fdb: list[dict] = field(default_factory=list)
    sysctl: dict[str, str] = field(default_factory=dict)
    wg_sockets: list[str] = field(default_factory=list)
    wg_ifaces: list[str] = field(default_factory=list)
    wg: list[WgIface] = field(default_factory=list)
    wg_error: str = ""
    iptables: str = ""
    iptables_error: str = ""
    ip6tables: str = ""                 # "" also where the host has no ip6tables
    nft: str = ""                       # nft -j list ruleset ("" where the host has no nft)
    nft_error: str = ""
    rules6: list[dict] = field(default_factory=list)
    wg_files: dict[str, str] = field(default_factory=dict)    # /etc/wireguard/NAME.conf -> its text, secrets out
    ssh_client: tuple[str, str] | None = None
    ssh_server: str = ""                # the address this host is logged into ($SSH_CONNECTION)
    clock: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)     # section -> what went wrong


def parse_links(links_json: list, addrs_json: list) -> tuple[dict[str, LinkInfo], dict[str, str]]:
    addrs: dict[int, list[str]] = {}
    for a in addrs_json:
        for ai in a.get("addr_info", []):
            fam = ai.get("family")
            if fam not in ("inet", "inet6") or "local" not in ai or ai.get("scope") == "link":
                continue              # link-local is nobody's network
            addrs.setdefault(a.get("ifindex", 0), []).append(
                f"{ai['local']}/{ai.get('prefixlen', 32 if fam == 'inet' else 128)}")
    out, macs = {}, {}
    for l in links_json:
        name = l.get("ifname")
        if not isinstance(name, str):
            continue
        kind = (l.get("linkinfo") or {}).get("info_kind", "") or ""
        out[name] = LinkInfo(name, "UP" in (l.get("flags") or []), int(l.get("mtu", 0) or 0),
                             addrs.get(l.get("ifindex", 0), []), int(l.get("ifindex", 0) or 0), str(kind),
                             l.get("master") if isinstance(l.get("master"), str) else None)
        if isinstance(l.get("address"), str):
            macs[name] = l["address"]
    return out, macs


def _dst(d, family: int = 4) -> str:
    if d in (None, "default", "0.0.0.0/0", "::/0"):
        return "default"
    return d if "/" in d else f"{d}/{128 if family == 6 else 32}"


def table_of(t) -> int:
    if t is None:
        return 254
    t = str(t)
    return TABLES.get(t, int(t) if t.isdigit() else 0)


def parse_routes(routes_json: list, family: int = 4) -> tuple[list[RouteInfo], list[str]]:
    routes, types = [], []
    for r in routes_json:
        if not isinstance(r, dict):
            continue
        dst = str(r.get("dst") or "")
        if family == 6 and (dst.startswith(("fe80:", "ff")) or r.get("type") in ("multicast", "anycast")):
            continue                  # link-local and multicast routes: every interface has them
        routes.append(RouteInfo(_dst(r.get("dst"), family), r.get("gateway"), r.get("dev"),
                                PROTOS.get(str(r.get("protocol", "boot")), str(r.get("protocol", "boot"))),
                                table_of(r.get("table")), family))
        types.append(str(r.get("type", "unicast")))
    return routes, types


def parse_route_get(status: int, out: str, err: str) -> RouteLookup:
    """``ip -j route get``'s answer, or the kernel's refusal as the text of its errno."""
    if status != 0:
        text = err.strip().splitlines()[-1] if err.strip() else "route lookup failed"
        return RouteLookup(False, error=text.split("RTNETLINK answers:")[-1].strip())
    r = _json(out)
    if not r or not isinstance(r[0], dict):
        return RouteLookup(False, error="no answer from ip route get")
    r = r[0]
    return RouteLookup(True, r.get("dev"), r.get("gateway"), str(r.get("type", "unicast")), prefsrc=r.get("prefsrc"))


def parse_neigh(text: str) -> list[tuple[str, str, str]]:
    out = []
    for n in _json(text):
        if isinstance(n, dict) and "dst" in n:
            state = n.get("state") or ["NONE"]
            out.append((str(n.get("dev", "?")), str(n["dst"]), str(state[0] if isinstance(state, list) else state)))
    return out


def parse_sysctl(text: str) -> dict[str, str]:
    """``grep -H . /proc/sys/...`` lines: path:value."""
    out = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if sep and path.startswith("/proc/sys/"):
            out[path[len("/proc/sys/"):].replace("/", ".")] = value.strip()
    return out


def parse_conntrack(text: str, src: str, dst: str) -> list[tuple[str, str, str, str]]:
    """/proc/net/nf_conntrack or ``conntrack -L`` lines: the first src=/dst= pair is the original
    direction, the second the reply."""
    out = []
    for line in text.splitlines():
        srcs = re.findall(r"\bsrc=(\S+)", line)
        dsts = re.findall(r"\bdst=(\S+)", line)
        if len(srcs) >= 2 and len(dsts) >= 2 and (srcs[0], dsts[0]) == (src, dst):
            out.append((srcs[0], dsts[0], srcs[1], dsts[1]))
    return out


def parse_wg_files(text: str) -> dict[str, str]:
    """The ``wgfiles`` section: each file's name on a marker line, then its lines."""
    out: dict[str, str] = {}
    name = None
    for line in text.split("\n"):
        if line.startswith(WG_FILE_MARK):
            name = line[len(WG_FILE_MARK):].strip()
            out[name] = ""
        elif name is not None:
            out[name] += line + "\n"
    return out


def parse_snapshot(text: str, mark: str) -> HostState:
    sec = split_sections(text, mark)
    st = HostState()
    get = lambda n: sec.get(n, Section("", 127, "not run"))     # noqa: E731
    for name, s in sec.items():
        if s.status != 0:
            st.errors[name] = s.err or f"exit status {s.status}"
    try:
        st.uid = int(get("id").out.strip())
    except ValueError:
        pass
    st.tools = set(get("tools").out.split())
    if "sudo" in sec and sec["sudo"].status != 0:
        st.sudo_error = sec["sudo"].err or "sudo -n failed"
    st.links, st.macs = parse_links(_json(get("link").out), _json(get("addr").out))
    st.routes, st.route_types = parse_routes(_json(get("route").out))
    r6, t6 = parse_routes(_json(get("route6").out), 6)
    st.routes += r6
    st.route_types += t6
    st.rules = [r for r in _json(get("rule").out) if isinstance(r, dict)]
    st.rules6 = [r for r in _json(get("rule6").out) if isinstance(r, dict)]
    st.fdb = [r for r in _json(get("fdb").out) if isinstance(r, dict)]
    st.sysctl = parse_sysctl(get("sysctl").out)
    st.wg_sockets = [p[:-5] for p in get("wgsock").out.split() if p.endswith(".sock")]
    if get("wgifaces").status == 0:
        st.wg_ifaces = get("wgifaces").out.split()
        st.wg = parse_dump(get("wgdump").out)
    else:
        st.wg_error = get("wgifaces").err
    st.wg_files = parse_wg_files(get("wgfiles").out)
    if get("iptables").status == 0:
        st.iptables = get("iptables").out
    else:
        st.iptables_error = get("iptables").err
    if get("ip6tables").status == 0:
        st.ip6tables = get("ip6tables").out
    if get("nft").status == 0:
        st.nft = get("nft").out
    elif "nft" in st.tools:
        st.nft_error = get("nft").err
    words = get("conn").out.split()
    if len(words) >= 2:
        try:
            ipaddress.ip_address(words[0])
            st.ssh_client = (words[0], str(int(words[1])))
        except ValueError:
            pass
    if len(words) >= 4:
        try:
            st.ssh_server = str(ipaddress.ip_address(words[2].split("%")[0]))
        except ValueError:
            pass
    try:
        st.clock = float(get("clock").out.strip())
    except ValueError:
        pass
    return st
