"""``wgtrace trace``, ``diagnose`` and ``break``: one probe, its verdict, and faults to make one."""
from __future__ import annotations

from typing import Optional

import typer

from ..errors import UsageError
from .common import emit, err, finish, guarded, json_opt, lab_opt, lang_of, lang_opt, out, show_trace
from .hosts import Asker, check_hosts_args, hosts_opt, only_opt, warn_unseen


def _opts():
    return dict(
        tcp=typer.Option(None, "--tcp", help="Send a TCP SYN to this port."),
        udp=typer.Option(None, "--udp", help="Send a UDP datagram to this port."),
        size=typer.Option(None, "--size", help="IP packet length in bytes, DF set."),
        v4=typer.Option(False, "-4", help="Probe over IPv4 only (a node with both families is probed in both)."),
        v6=typer.Option(False, "-6", help="Probe over IPv6 only."))


_o = _opts()


def _family(v4: bool, v6: bool) -> int | None:
    if v4 and v6:
        raise UsageError("choose one of -4 and -6 (without either, a node with both is probed in both).")
    return 4 if v4 else 6 if v6 else None


@guarded
def trace(src: str = typer.Argument(..., help="Node that sends the probe."),
          dst: str = typer.Argument(..., help="Node name or IP address inside the lab (with --hosts: any address, or a name to resolve)."),
          tcp: Optional[int] = _o["tcp"], udp: Optional[int] = _o["udp"], size: Optional[int] = _o["size"],
          lab: Optional[str] = lab_opt(), as_json: bool = json_opt(), lang: str = lang_opt(),
          pcap: Optional[str] = typer.Option(None, "--pcap", help="Write every captured frame to this "
                                                                  "pcapng file (one interface per node:iface)."),
          no_underlay: bool = typer.Option(False, "--no-underlay", help="Hide WireGuard's UDP datagrams."),
          hosts: Optional[str] = hosts_opt(), only: Optional[str] = only_opt(),
          v4: bool = _o["v4"], v6: bool = _o["v6"]):
    """Send one probe and follow it through every interface of every node."""
    from ..opener import open_network
    from ..trace.run import run_traces
    check_hosts_args(hosts, lab)
    lang, family = lang_of(lang), _family(v4, v6)
    with open_network(lab=lab, hosts=hosts, only=only) as net:
        said = warn_unseen(net)
        res = run_traces(net, src, dst, tcp, udp, size, keep_raw=bool(pcap), family=family)
        warn_unseen(net, said)
    show_trace(res, as_json, lang, pcap, no_underlay)


@guarded
def diagnose(src: str = typer.Argument(..., help="Node that sends the probe."),
             dst: str = typer.Argument(..., help="Node name or IP address inside the lab (with --hosts: any address, or a name to resolve)."),
             tcp: Optional[int] = _o["tcp"], udp: Optional[int] = _o["udp"], size: Optional[int] = _o["size"],
             lab: Optional[str] = lab_opt(), as_json: bool = json_opt(),
             fix: bool = typer.Option(False, "--fix", help="Apply the fix, diagnose again, until reachable."),
             lang: str = lang_opt(), hosts: Optional[str] = hosts_opt(),
             yes: bool = typer.Option(False, "--yes", help="With --hosts --fix: run each fix without asking."),
             only: Optional[str] = only_opt(), v4: bool = _o["v4"], v6: bool = _o["v6"]):
    """Where the probe stops, why, on what evidence, and the commands that fix it."""
    from ..opener import open_network
    check_hosts_args(hosts, lab)
    kw = dict(tcp=tcp, udp=udp, size=size, lang=lang_of(lang))
    family = _family(v4, v6)
    with open_network(lab=lab, hosts=hosts, only=only) as net:
        said = warn_unseen(net)
        if fix:
            from ..diagnose.fixloop import fix_loops
            from ..teach.exercise import note_fix
            net.ask_before_changes(Asker(yes))         # nodes that are someone's machines ask first
            result = fix_loops(net, src, dst, family,
                               on_step=(lambda s: None) if as_json else (lambda s: emit(s, False, kw["lang"])), **kw)
            note_fix(net, [a for run in result.results for s in run.steps for a in s.applied])
        else:
            from ..diagnose.run import diagnose_families
            result = diagnose_families(net, src, dst, family, **kw)
        warn_unseen(net, said)
    emit(result, as_json, kw["lang"])
    finish(result.reachable)


@guarded
def break_(fault: Optional[str] = typer.Argument(None, help="Name of the fault to inject."),
           list_: bool = typer.Option(False, "--list", help="List the lab's faults."),
           lab: Optional[str] = lab_opt(),
           labfile: Optional[str] = typer.Option(None, "--labfile",
                                                 help="With --list: the faults of this lab file (none need be up).")):
    """Inject a named fault into a running lab (an exercise); --list shows them."""
    from ..lab.inject import inject
    from ..lab.open import require_lab
    from ..lab.preflight import require_root
    from ..model.faults import find_fault, load_faults
    if list_ or not fault:
        from ..lab.runtime import load_state, running_labs
        from ..model.labfile import find_lab
        if labfile and lab:
            raise UsageError("--lab names a running lab and --labfile a lab file: give one.")
        up = running_labs()
        st = load_state(lab or (up[0] if len(up) == 1 and not labfile else "")) if (lab or up) else None
        if lab and st is None:
            require_lab(lab)                             # says why in one sentence
        for f in load_faults(st.file if st and not labfile else str(find_lab(labfile or "seed"))):
            out.print(f"[bold]{f.name:<28}[/] {f.summary}  [dim]({f.cause} at {f.node})[/]", highlight=False)
        return
    require_root()
    st = require_lab(lab)
    f = find_fault(load_faults(st.file), fault)
    for node, cmd in inject(f, st):
        err.print(f"[cyan]{node}#[/] {cmd}", highlight=False)
    err.print(f"fault [bold]{f.name}[/] injected: {f.summary}")
