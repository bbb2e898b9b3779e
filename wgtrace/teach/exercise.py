"""Course tools: an exercise (the finished lab with K random faults) and its grading.

``start_exercise`` builds the lab and breaks it, all or nothing; ``grade`` probes the lab's
default pair by ping and, when the lab names a service, by TCP to it, and in an exercise's lab
also every pair that shows one of its faults (a catalogue's fault may be seen from another
pair than the default: in the hub, host to host); both keep a record that ``wgtrace report`` reads.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from ..diagnose.run import Diagnosis, diagnose
from ..errors import UsageError
from ..lab.build import lab_up
from ..lab.inject import inject
from ..opener import open_network
from ..lab.runtime import LabState
from ..lab.teardown import lab_down
from ..model.faults import Fault, load_faults, pick
from ..model.lab import Lab
from .guided import diagnosis_record
from .progress import Record, load_record


@dataclass
class Exercise:
    seed: int
    state: LabState
    faults: list[Fault]
    src: str
    dst: str
    tcp: int | None
    probes: list[dict] = field(default_factory=list)   # what grade() sends: {src, dst, tcp|udp}


def default_probe(lab: Lab) -> tuple[str, str, int | None]:
    """The lab's default probe: its ``probe`` table, else the first and last node; and the TCP port
    of a service on the destination, if the lab file gives it one."""
    names = list(lab.nodes)
    src, dst = lab.probe_src or names[0], lab.probe_dst or names[-1]
    svc = next((s for s in lab.nodes[dst].services), None)
    return src, dst, svc.port if svc else None


def probes_of(model: Lab, faults: list[Fault]) -> list[dict]:
    """The probes that must get through for an exercise to pass: the lab's default (ping, and TCP
    to the destination's service), then each fault's own probe where it has one, each once."""
    src, dst, tcp = default_probe(model)
    out = [{"src": src, "dst": dst}] + ([{"src": src, "dst": dst, "tcp": tcp}] if tcp else [])
    for f in faults:
        p = {"src": f.probe.get("src", src), "dst": f.probe.get("dst", dst),
             **{k: f.probe[k] for k in ("tcp", "udp") if k in f.probe}}
        if p not in out:
            out.append(p)
    return out


def start_exercise(model: Lab, k: int, seed: int | None, check=lambda kind="": None) -> Exercise:
    catalogue = load_faults(model.path, model.nodes)
    usable = [f for f in catalogue if "size" not in f.probe]      # as pick() chooses them
    if k < 1:
        raise UsageError("--faults is how many faults to inject: 1 or more.")
    if k > len(usable):
        raise UsageError(f"--faults {k}: lab {model.name!r} has {len(usable)} faults that can be combined.")
    seed = seed if seed is not None else random.randrange(10000)
    chosen = pick(catalogue, k, seed)
    if len(chosen) < k:             # faults on the same subject overwrite each other
        raise UsageError(f"--faults {k}: only {len(chosen)} faults of lab {model.name!r} can be combined "
                         f"(seed {seed}); ask for fewer.")
    st = lab_up(model, on_event=lambda kind, data: check(kind))
    try:
        for f in chosen:
            check()
            inject(f, st)
    except BaseException:
        lab_down(st.lab)            # a half-broken exercise is worse than none
        raise
    probes = probes_of(model, chosen)
    rec = Record("exercise", "exercise", st.lab, seed=seed, faults=[f.name for f in chosen], lab_file=model.path,
                 probes=probes, lab_started=st.started)
    rec.log("exercise", faults=[f.name for f in chosen])
    src, dst, tcp = default_probe(model)
    return Exercise(seed, st, chosen, src, dst, tcp, probes)


@dataclass
class Grade:
    lab: str
    checks: list[Diagnosis] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(d.reachable for d in self.checks)

    def to_json(self, lang: str = "en") -> dict:
        return {"passed": self.passed, "checks": [d.to_json() for d in self.checks]}


def grade(lab: str | None, lang: str = "en") -> Grade:
    """Pass only when the lab's default source reaches its destination by ping, and by TCP to the
    destination's service when it has one; in the exercise's lab, also every pair that showed one
    of its faults. Recorded in the exercise's record, if this is its lab."""
    rec = load_record("exercise")
    with open_network(lab=lab) as net:
        ours = rec is not None and rec.lab == net.name and (
            not rec.lab_started or net.state is None or abs(rec.lab_started - net.state.started) < 1e-3)
        src, dst, tcp = default_probe(net.model)
        probes = rec.probes if ours and rec.probes else probes_of(net.model, [])
        g = Grade(net.name, [])
        for p in probes:
            if p == {"src": src, "dst": dst, "tcp": tcp} and g.checks and not g.checks[0].reachable:
                continue                # TCP to the service says nothing new while ping fails
            g.checks.append(diagnose(net, p["src"], p["dst"], tcp=p.get("tcp"), udp=p.get("udp"), lang=lang))
    if ours:
        rec.log("check", passed=g.passed, **diagnosis_record(next((d for d in g.checks if not d.reachable),
                                                                   g.checks[-1])))
        if g.passed and not rec.finished:
            rec.finished = time.time()
            rec.save()
    return g


def note_fix(net, applied: list[dict]) -> None:
    """A grader should know the tool, not the student, repaired the exercise's lab (exercises
    run on labs: a network that is not the exercise's lab is not noted)."""
    rec = load_record("exercise")
    if rec and net.state is not None and rec.lab == net.name:
        rec.log("fix", command="; ".join(f"{a['node']}# {a['command']}" for a in applied) or "-")
