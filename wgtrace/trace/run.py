"""``wgtrace trace``: one probe, every interface, one story. Glue between capture and path.

``prepare`` is the set-up trace and diagnose share: check the request, resolve the
destination, make the probe. A probe has one family, taken from its destination address; a node
name with addresses of both families is probed in each (``families``), one result per family,
which ``Families`` holds together for the command line.
"""
from __future__ import annotations

from ..addr import bare, family as addr_family, iface_net, in_nets, ip, is_default
from ..errors import LabFileError, UsageError
from ..network import Network
from ..model.lab import Lab
from .capture import Observation, observe
from .path import TraceResult, assemble
from .probe import Probe


def dst_addresses(lab: Lab, dst: str, src: str | None = None, family: int | None = None,
                  avoid: str | None = None, outside: bool = False) -> list[str]:
    """A node name becomes its addresses ``src`` should use, one per family (IPv4 first): of each
    family, its first address on a network ``src`` shares, else its first one; ``family`` keeps one;
    never ``avoid`` (the address a host is logged into) while the node has another.
    An IP address must belong to the lab's networks, unless ``outside`` (real hosts: any address)."""
    if dst in lab.nodes:
        cidrs = [c for _, c in lab.nodes[dst].all_cidrs()]
        if not cidrs:
            raise UsageError(f"node {dst!r} has no address to probe.")
        mine = [iface_net(c) for _, c in lab.nodes[src].all_cidrs()] if src in lab.nodes else []
        mine = [n for n in mine if not is_default(n)]
        out = []
        for fam in ([family] if family else [4, 6]):
            of = [c for c in cidrs if addr_family(c) == fam]
            if avoid and len(of) > 1:
                of = [c for c in of if bare(c) != avoid]
            if of:
                shared = [c for c in of if in_nets(bare(c), mine)]
                out.append(bare((shared or of)[0]))
        if not out:
            raise UsageError(f"node {dst!r} has no IPv{family} address to probe.")
        return out
    a = ip(dst)
    if a is None:
        raise LabFileError(f"{dst!r} is neither a node of lab {lab.name!r} ({', '.join(lab.nodes)}) "
                           f"nor an IP address.") from None
    if family and a.version != family:
        raise UsageError(f"{dst} is an IPv{a.version} address; -{family} asks for IPv{family}.")
    nets = [iface_net(c) for n in lab.nodes.values() for _, c in n.all_cidrs()]
    if not outside and not in_nets(a, nets):
        raise UsageError(f"{dst} is outside the lab's networks; wgtrace only probes addresses inside the lab.")
    return [str(a)]


def resolve_dst(lab: Lab, dst: str, src: str | None = None, family: int | None = None,
                avoid: str | None = None, outside: bool = False) -> str:
    """The one address a probe to ``dst`` goes to (IPv4 where there is a choice)."""
    return dst_addresses(lab, dst, src, family, avoid, outside)[0]


def resolve_name(net: Network, dst: str) -> str:
    """A destination that is neither a node nor an address, on a network whose probes may leave it
    (real hosts): the name resolved once, here, its first address (IPv4 first) used from then on."""
    if dst in net.model.nodes or ip(dst) is not None or not net.outside:
        return dst
    if dst not in net.resolved:
        import socket
        if not dst or len(dst) > 253 or not all(c.isalnum() or c in ".-_" for c in dst):
            raise UsageError(f"{dst!r} is neither a host of {net.name!r} ({', '.join(net.model.nodes)}), "
                             f"an IP address, nor a name to resolve.")
        try:
            found = socket.getaddrinfo(dst, None, type=socket.SOCK_DGRAM)
        except (socket.gaierror, UnicodeError):
            raise UsageError(f"{dst!r} is neither a host of {net.name!r} ({', '.join(net.model.nodes)}) "
                             f"nor an address, and the name does not resolve here.") from None
        addrs = sorted({x[4][0] for x in found}, key=lambda a: (addr_family(a) != 4, a))
        net.resolved[dst] = addrs[0]
    return net.resolved[dst]


def families(lab: Lab, src: str, dst: str, family: int | None = None) -> list[int]:
    """The families a probe from ``src`` to ``dst`` is sent in: ``family`` when given (``-4``,
    ``-6``), an address's own, else every family both ends have an address of (IPv4 first)."""
    if family:
        return [family]
    a = ip(dst)
    if a is not None:
        return [a.version]
    if dst not in lab.nodes:
        return [4]                       # prepare() says what is wrong with it
    have = {addr_family(c) for _, c in lab.nodes[dst].all_cidrs()}
    mine = {addr_family(c) for _, c in lab.nodes[src].all_cidrs()} if src in lab.nodes else have
    return [f for f in (4, 6) if f in have and f in mine] or [f for f in (4, 6) if f in have] or [4]


def check_family(family: int | None) -> int | None:
    if family not in (None, 4, 6):
        raise UsageError("the address family is 4 or 6 (-4, -6).")
    return family


def prepare(net: Network, src: str, dst: str, tcp: int | None = None, udp: int | None = None,
            size: int | None = None, family: int | None = None) -> Probe:
    lab = net.model
    if src not in net.nodes:
        raise LabFileError(f"no node {src!r} in lab {net.name!r} (nodes: {', '.join(net.nodes)}).")
    for role, name in (("sender", src), ("destination", dst)):
        if name in net.nodes and name not in lab.nodes:       # a node that could not be read
            raise LabFileError(f"{name} cannot be the probe's {role}: {net.unseen.get(name) or 'it could not be read'}"
                               + (" Probe one of its addresses instead." if role == "destination" else ""))
    if tcp is not None and udp is not None:
        raise UsageError("choose one of --tcp and --udp.")
    for opt, port in (("--tcp", tcp), ("--udp", udp)):
        if port is not None and not 0 < port < 65536:
            raise UsageError(f"{opt} takes a port number from 1 to 65535.")
    kind, port = ("tcp", tcp) if tcp is not None else ("udp", udp) if udp is not None else ("icmp", 0)
    dst_ip = resolve_dst(lab, resolve_name(net, dst), src, check_family(family), avoid=net.logins.get(dst),
                         outside=net.outside)
    least = 68 if addr_family(dst_ip) == 6 else 48          # the headers and wgtrace's mark
    if size is not None and not least <= size <= 65000:
        raise UsageError(f"--size is the IP packet length in bytes, from {least} (headers and wgtrace's mark"
                         f"{', IPv6' if least == 68 else ''}) to 65000.")
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
              size: int | None = None, keep_raw: bool = False, family: int | None = None) -> TraceResult:
    """Trace on a network (one family: ``family``, else IPv4 where there is a choice); with
    ``keep_raw`` the result keeps the raw frames (for pcapng)."""
    def look(probe: Probe, watched: set[str]) -> TraceResult:
        obs = probe_once(net, probe, keep_raw, watched=watched)
        res = assemble(net.model, obs, src, dst, wg_interfaces(net, watched))
        res.observation = obs if keep_raw else None
        return res
    return widening(net, prepare(net, src, dst, tcp, udp, size, family), look)


class Families:
    """The results of one command in each family it probed (a node name with both): the command
    line shows them one after another; JSON is the first one's, as for one family, with every
    result under ``families`` (docs/json.md)."""

    def __init__(self, results: list) -> None:
        self.results = results

    @property
    def reachable(self) -> bool:
        return all(r.reachable for r in self.results)

    @property
    def observation(self):
        """Every family's frames together (one pcapng file)."""
        obs = [r.observation for r in self.results if getattr(r, "observation", None) is not None]
        if not obs:
            return None
        from .capture import Observation
        return Observation(obs[0].probe, captures=[c for o in obs for c in o.captures])

    def to_json(self, lang: str = "en") -> dict:
        each = [{**r.to_json(lang), "family": f} for f, r in self.pairs()]
        if len(each) == 1:
            return each[0]
        return {**each[0], "families": each, "all_reachable": self.reachable}

    def pairs(self) -> list[tuple[int, object]]:
        return [(result_family(r), r) for r in self.results]


def result_family(r) -> int:
    """The family a trace, diagnosis or fix run probed in."""
    steps = getattr(r, "steps", None)
    if steps is not None:
        return steps[0].diagnosis.trace.family if steps else 4
    return getattr(r, "trace", r).family


def run_traces(net: Network, src: str, dst: str, tcp: int | None = None, udp: int | None = None,
               size: int | None = None, keep_raw: bool = False, family: int | None = None) -> Families:
    """``trace`` on the command line: one trace per family (``families``)."""
    return Families([run_trace(net, src, dst, tcp, udp, size, keep_raw, f)
                     for f in families(net.model, src, dst, check_family(family))])
