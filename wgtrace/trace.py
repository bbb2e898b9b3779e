"""``wgtrace trace``: one probe, every interface, one story. Glue between observe and path."""
from __future__ import annotations

import ipaddress

from .errors import LabFileError, UsageError
from .labfile import load_lab
from .model import Lab
from .node import NodeHandle
from .path import TraceResult, assemble
from .probe import Probe
from .runtime import LabState
from .status import require_lab


def lab_of(state: LabState) -> Lab:
    return load_lab(state.file, rename=state.lab)


def resolve_dst(lab: Lab, dst: str) -> str:
    """A node name becomes its first address; an IP must belong to the lab's networks."""
    if dst in lab.nodes:
        n = lab.nodes[dst]
        addrs = list(n.addresses.values()) or [w.address for w in n.wireguard.values()]
        if not addrs:
            raise UsageError(f"node {dst!r} has no address to probe.")
        return addrs[0].split("/")[0]
    try:
        ip = ipaddress.IPv4Address(dst)
    except ValueError:
        raise LabFileError(f"{dst!r} is neither a node of lab {lab.name!r} ({', '.join(lab.nodes)}) "
                           f"nor an IPv4 address.") from None
    nets = [ipaddress.IPv4Interface(c).network for n in lab.nodes.values()
            for c in list(n.addresses.values()) + [w.address for w in n.wireguard.values()]]
    if not any(ip in net for net in nets):
        raise UsageError(f"{dst} is outside the lab's networks; wgtrace only probes addresses inside the lab.")
    return str(ip)


def make_probe(lab: Lab, src: str, dst: str, tcp: int | None = None, udp: int | None = None,
               size: int | None = None) -> Probe:
    if src not in lab.nodes:
        raise LabFileError(f"no node {src!r} in lab {lab.name!r} (nodes: {', '.join(lab.nodes)}).")
    if tcp is not None and udp is not None:
        raise UsageError("choose one of --tcp and --udp.")
    for opt, port in (("--tcp", tcp), ("--udp", udp)):
        if port is not None and not 0 < port < 65536:
            raise UsageError(f"{opt} takes a port number from 1 to 65535.")
    if size is not None and not 48 <= size <= 65000:
        raise UsageError("--size is the IP packet length in bytes, from 48 (headers and wgtrace's mark) to 65000.")
    kind, port = ("tcp", tcp) if tcp is not None else ("udp", udp) if udp is not None else ("icmp", 0)
    dst_ip = resolve_dst(lab, dst)
    owner = lab.address_owner(dst_ip)
    if owner and owner[0] == src:
        raise UsageError(f"{dst} is {src} itself: probe another node.")
    return Probe.new(src, dst_ip, kind, port or 0, size or 0)


def run_trace(src: str, dst: str, lab_name: str | None = None, tcp: int | None = None,
              udp: int | None = None, size: int | None = None, keep_raw: bool = False,
              quiet: float = 0.25, timeout: float = 3.0) -> tuple[TraceResult, object]:
    """Trace on a running lab; returns the result and the raw observation (for pcap)."""
    from .observe import observe
    state = require_lab(lab_name)
    lab = lab_of(state)
    probe = make_probe(lab, src, dst, tcp, udp, size)
    nodes = [NodeHandle(state.lab, n, state.wg_impl) for n in state.nodes]
    obs = observe(nodes, probe, quiet=quiet, timeout=timeout, keep_raw=keep_raw,
                  skip_ifaces=lab.bridge_ports())
    return assemble(lab, obs, src, dst), obs
