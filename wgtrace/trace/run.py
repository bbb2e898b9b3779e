"""``wgtrace trace``: one probe, every interface, one story. Glue between capture and path.

``prepare`` is the set-up trace and diagnose share: check the request, resolve the
destination, make the probe.
"""
from __future__ import annotations

import ipaddress

from ..errors import LabFileError, UsageError
from ..lab.open import Network
from ..model.lab import Lab
from .capture import Observation, observe
from .path import TraceResult, assemble
from .probe import Probe


def resolve_dst(lab: Lab, dst: str, src: str | None = None) -> str:
    """A node name becomes the address of it that ``src`` should use (its first address on a
    network ``src`` shares, else its first address); an IP must belong to the lab's networks."""
    if dst in lab.nodes:
        n = lab.nodes[dst]
        addrs = list(n.addresses.values()) + [w.address for w in n.wireguard.values()]
        if not addrs:
            raise UsageError(f"node {dst!r} has no address to probe.")
        if src in lab.nodes:
            mine = list(lab.nodes[src].addresses.values()) + [w.address for w in lab.nodes[src].wireguard.values()]
            nets = [ipaddress.IPv4Interface(c).network for c in mine]
            shared = [a for a in addrs if any(ipaddress.IPv4Interface(a).ip in n for n in nets if n.prefixlen > 0)]
            if shared:
                return shared[0].split("/")[0]
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


def prepare(net: Network, src: str, dst: str, tcp: int | None = None, udp: int | None = None,
            size: int | None = None) -> Probe:
    lab = net.model
    if src not in net.nodes:
        raise LabFileError(f"no node {src!r} in lab {net.name!r} (nodes: {', '.join(net.nodes)}).")
    if tcp is not None and udp is not None:
        raise UsageError("choose one of --tcp and --udp.")
    for opt, port in (("--tcp", tcp), ("--udp", udp)):
        if port is not None and not 0 < port < 65536:
            raise UsageError(f"{opt} takes a port number from 1 to 65535.")
    if size is not None and not 48 <= size <= 65000:
        raise UsageError("--size is the IP packet length in bytes, from 48 (headers and wgtrace's mark) to 65000.")
    kind, port = ("tcp", tcp) if tcp is not None else ("udp", udp) if udp is not None else ("icmp", 0)
    dst_ip = resolve_dst(lab, dst, src)
    owner = lab.address_owner(dst_ip)
    if owner and owner[0] == src:
        raise UsageError(f"{dst} is {src} itself: probe another node.")
    return Probe.new(src, dst_ip, kind, port or 0, size or 0)


def wg_interfaces(net: Network, only: set[str] | None = None) -> set[tuple[str, str]]:
    """(node, iface) of every WireGuard interface, as the nodes report them."""
    return {(n, i) for n, node in net.nodes.items() if only is None or n in only for i in node.wg_ifaces()}


def probe_once(net: Network, probe: Probe, keep_raw: bool = False, quiet: float = 0.25,
               timeout: float = 3.0, exclusive: bool = True, watched: set[str] | None = None) -> Observation:
    """``exclusive``: take the network's probe lock (False: the caller holds it already);
    ``watched``: the nodes to capture on (default: all)."""
    import contextlib
    nodes = [h for n, h in net.nodes.items() if watched is None or n in watched]
    with net.exclusive() if exclusive else contextlib.nullcontext():
        return observe(nodes, probe, quiet=quiet, timeout=timeout, keep_raw=keep_raw,
                       skip_ifaces=net.model.bridge_ports())


def first_watch(net: Network, probe: Probe) -> set[str]:
    """Where to watch first: the predicted path (scope.py), or everything in a small lab."""
    from .scope import SMALL, predict
    if len(net.nodes) <= SMALL:
        return set(net.nodes)
    route, _ = net.nodes[probe.src_node].source_route(probe.dst)
    return predict(net, probe.src_node, probe.dst, route.prefsrc)


def again(probe: Probe) -> Probe:
    """The same probe with new marks, for a second look (late packets of the first one are not its)."""
    return Probe.new(probe.src_node, probe.dst, probe.kind, probe.port, probe.size)


def widening(net: Network, probe: Probe, look) -> TraceResult:
    """``look(probe, watched) -> TraceResult`` on the first watch (scope.py), then again with a
    new probe and a wider watch for as long as the packet goes where nobody watched (4 looks at most)."""
    from .scope import escaped
    watched = first_watch(net, probe)
    for _ in range(4):
        res = look(probe, watched)
        more = escaped(net, res, watched)
        if not more:
            break
        watched |= more
        probe = again(probe)
    return res


def run_trace(net: Network, src: str, dst: str, tcp: int | None = None, udp: int | None = None,
              size: int | None = None, keep_raw: bool = False) -> TraceResult:
    """Trace on a network; with ``keep_raw`` the result keeps the raw frames (for pcapng)."""
    def look(probe: Probe, watched: set[str]) -> TraceResult:
        obs = probe_once(net, probe, keep_raw, watched=watched)
        res = assemble(net.model, obs, src, dst, wg_interfaces(net, watched))
        res.observation = obs if keep_raw else None
        return res
    res = widening(net, prepare(net, src, dst, tcp, udp, size), look)
    net.close()
    return res
