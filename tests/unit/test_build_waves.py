"""How a lab's stages are typed on its nodes (lab/stages.plan_waves): peers with endpoints after
everything else, keepalives last, and the state at the end the same as the commands' in order."""
from __future__ import annotations

import shlex

import pytest

from wgtrace.lab.stages import keepalive_later, plan_waves, undoes
from wgtrace.model.commands import stage_commands
from wgtrace.model.labfile import available_labs, load_lab


def fake_keys(lab) -> dict[str, str]:
    return {n: f"{n}-key" for n in lab.nodes}


def lines(wave: dict[str, list[str]]) -> dict[str, list[tuple[str, ...]]]:
    return {n: [tuple(shlex.split(l)) for l in ls if not l.startswith(("set -e", "echo "))] for n, ls in wave.items()}


def test_a_keepalive_is_split_from_its_peer():
    argv = ("wg", "set", "wg0", "peer", "OLD", "remove", "peer", "K", "allowed-ips", "10.0.0.2/32",
            "endpoint", "192.0.2.1:51820", "persistent-keepalive", "25")
    assert keepalive_later(argv) == (argv[:-2], ("wg", "set", "wg0", "peer", "K", "persistent-keepalive", "25"))
    off = ("wg", "set", "wg0", "peer", "K", "persistent-keepalive", "0")
    assert keepalive_later(off) == (off, None)
    assert keepalive_later(("ip", "link", "set", "wg0", "up")) == (("ip", "link", "set", "wg0", "up"), None)


@pytest.mark.parametrize("argv, undone", [
    (("wg", "set", "wg0", "peer", "K", "remove"), True),
    (("wg", "set", "wg0", "peer", "K", "persistent-keepalive", "0"), True),
    (("wg", "set", "wg0", "peer", "K", "allowed-ips", "10.0.0.0/24"), False),      # wg set keeps the keepalive
    (("wg", "set", "wg0", "peer", "J", "persistent-keepalive", "0"), False),
    (("wg", "set", "wg1", "peer", "K", "remove"), False),
    (("ip", "link", "del", "wg0"), True),
    (("wg-quick", "down", "wg0"), True),
])
def test_what_takes_a_pending_keepalive_back(argv, undone):
    assert undoes(argv, "wg0", "K") is undone


@pytest.mark.parametrize("name", available_labs())
def test_keepalives_come_last_and_the_commands_are_the_same(name: str):
    lab = load_lab(name)
    keys = fake_keys(lab)
    indices = range(len(lab.stages))
    waves = [lines(w) for w in plan_waves(lab, indices, keys)]
    typed: dict[str, list[tuple[str, ...]]] = {}
    for i in indices:
        for cmd in stage_commands(lab, i, keys):
            typed.setdefault(cmd.node, []).append(tuple(cmd.argv))
    for node, argvs in typed.items():
        # the first two waves are the node's commands in order, the second's keepalives taken out
        first = waves[0].get(node, [])
        assert first == argvs[:len(first)], node
        assert waves[1].get(node, []) == [keepalive_later(a)[0] for a in argvs[len(first):]], node
    for node, argvs in waves[1].items():
        assert all(keepalive_later(a)[1] is None for a in argvs), (node, "a keepalive before the last wave")
    for node, argvs in waves[2].items():
        assert all(a[:2] == ("wg", "set") and a[-2] == "persistent-keepalive" for a in argvs), node


def test_a_ring_of_keepalives_waits_for_every_peer():
    """The mesh: sitea keeps siteb alive, siteb sitec, sitec sitea. Every peer is declared in the
    second wave; the ring's three keepalives are the third."""
    lab = load_lab("mesh")
    keys = fake_keys(lab)
    waves = [lines(w) for w in plan_waves(lab, range(len(lab.stages)), keys)]
    ring = {(n, a[4]) for n, argvs in waves[2].items() for a in argvs}
    assert ring == {("sitea", "siteb-key"), ("siteb", "sitec-key"), ("sitec", "sitea-key")}
    for node in ("sitea", "siteb", "sitec"):
        declared = {a[4] for a in waves[1][node] if a[:2] == ("wg", "set") and "allowed-ips" in a}
        assert len(declared) == 2, (node, declared)
