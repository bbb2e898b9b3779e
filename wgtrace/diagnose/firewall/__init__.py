"""A node's firewall behind one seam: read it (``read``), and the commands a fix needs (``undo``,
``accept``, ``masquerade``), whichever backend wrote the rule.

Providers: iptables.py (iptables and ip6tables, legacy or nft-backed: the save format is the
same) and, for tables written in nftables' own language, nft.py. The verdict rules only see
``rules.Firewall`` and ``rules.FwRule``; a new backend is one module here and one entry in
``PROVIDERS``.
"""
from __future__ import annotations

from . import iptables, nft
from .rules import Firewall, FwRule, Packet

__all__ = ["Firewall", "FwRule", "Packet", "reads", "reads_after", "parse", "undo", "accept", "masquerade",
           "chain_of_hook", "loosen"]

PROVIDERS = {"iptables": iptables, "nft": nft}


def reads() -> dict[str, tuple[str, ...]]:
    """The commands that read every provider's rules and counters: name -> argv (one job each,
    run on every node at once; a node without the tool just has no such rules)."""
    return {**{f"iptables{fam}": argv for fam, argv in iptables.READS.items()}, "nft": nft.READS}


def reads_after(rules: dict[FwRule, int]) -> dict[str, tuple[str, ...]]:
    """The reads after the probe, for a node whose rules before it were ``rules``: nft's ruleset
    only where a native rule has a counter (nothing else in it can move, and it costs most)."""
    return {k: v for k, v in reads().items()
            if k != "nft" or any(r.backend == "nft" and r.counted for r in rules)}


def parse(outputs: dict[str, str | None]) -> dict[FwRule, int]:
    """The rules and counts from what ``reads()`` printed on one node. The tables iptables-nft
    made show in nft's listing too: they are read once, as iptables rules."""
    counts: dict[FwRule, int] = {}
    saves = {fam: outputs.get(f"iptables{fam}") or "" for fam in (4, 6)}
    for fam, text in saves.items():
        counts.update(iptables.parse(text, fam))
    counts.update(nft.parse(outputs.get("nft") or "", nft.iptables_chains(saves)))
    return counts


def diff(before: dict[FwRule, int], after: dict[FwRule, int]) -> list[tuple[FwRule, int]]:
    """The rules whose counters moved, by how much."""
    return [(r, n - before.get(r, 0)) for r, n in after.items() if n - before.get(r, 0) > 0]


def _provider(rule_or_backend):
    name = rule_or_backend if isinstance(rule_or_backend, str) else rule_or_backend.backend
    return PROVIDERS[name]


def undo(rule: FwRule) -> tuple[str, ...]:
    """Take the rule out (a policy: open it)."""
    return _provider(rule).undo(rule)


def loosen(rule: FwRule) -> list[tuple[str, ...]]:
    """A reverse-path rule (``rule.match("rpfilter")``) in loose mode, in its own backend."""
    return _provider(rule).loosen(rule)


def chain_of_hook(hook: str) -> str:
    return {"input": "INPUT", "forward": "FORWARD", "output": "OUTPUT"}[hook]


def accept(fw: Firewall, hook: str, family: int, *, like: FwRule | None = None, first: bool = False,
           iif: str | None = None, oif: str | None = None, proto: str | None = None,
           dport: int | None = None, established: bool = False, table: bool = True) -> tuple[str, ...]:
    """A rule that lets exactly this traffic through ``hook``, in the backend of ``like`` (the rule
    or policy that dropped it; iptables when there is none), before the drop."""
    backend = like.backend if like else "iptables"
    if backend == "iptables":
        chain = like.chain if like and not like.policy else chain_of_hook(hook)
        return iptables.accept(family, chain, first=first, iif=iif, oif=oif, proto=proto, dport=dport,
                               established=established, table=table)
    return _provider(backend).accept(fw, like, family, first=first, iif=iif, oif=oif, proto=proto,
                                     dport=dport, established=established)


def masquerade(fw: Firewall, family: int, src: str, oif: str) -> tuple[str, ...]:
    """Source NAT for ``src`` out of ``oif``, in the backend the node already translates with (an
    nft nat chain on postrouting counts, even empty, when iptables translates nothing)."""
    translating = fw.translating(family)
    native = next((r for r in translating if r.backend != "iptables"), None)
    if native is None and not translating:
        native = nft.nat_chain(fw, family)
    if native is not None:
        return _provider(native).masquerade(fw, native, family, src, oif)
    return iptables.masquerade(family, src, oif)
