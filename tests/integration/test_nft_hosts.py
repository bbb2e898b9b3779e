"""Native nftables on hosts reached over real SSH (tests/labs/seedssh.toml, tests/ssh_support.py):
the hosts' rulesets are read (listing is a read), a drop without a counter is named by table,
chain and handle as in a lab, and the diagnosis changes no host's ruleset."""
from __future__ import annotations

import json
import re

import ssh_support as S
from wgtrace.lab.inject import inject
from wgtrace.model.faults import Fault, Step

# firewalld's kind of table on company, dropping what comes out of the tunnel for the LAN
TABLE = ["nft add table inet fw",
         "nft add chain inet fw forward { type filter hook forward priority 10 ; policy accept ; }",
         "nft add rule inet fw forward iifname wg0 oifname ens192 drop"]


def _ruleset(lab, node: str) -> str:
    text = lab.node(node).run(["nft", "-a", "list", "ruleset"]).stdout
    return re.sub(r"counter packets \d+ bytes \d+", "counter", text)


def test_native_drop_named_over_ssh_and_nothing_changed(lab_factory):
    lab = lab_factory.up(lab_file=S.LAB_FILE)
    hosts = S.prepare(lab.name)
    steps = tuple(Step("company", tuple(c.split())) for c in TABLE)
    inject(Fault("fw", "", steps, "forward-filtered", "company", "request"), lab.state)
    handle = re.search(r'iifname "wg0" oifname "ens192" drop # handle (\d+)', _ruleset(lab, "company"))[1]
    before = {n: _ruleset(lab, n) for n in S.SEED_NODES}
    r = S.in_ctl(lab.name, "diagnose", "home", "target", "--hosts", hosts, "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    j = json.loads(r.stdout)
    assert (j["cause"], j["stop"]["node"], j["stop"]["phase"]) == ("forward-filtered", "company", "request")
    nft = [e for e in j["evidence"] if e["kind"] == "nft"]
    assert len(nft) == 1 and "inet fw forward" in nft[0]["detail"] and f"# handle {handle}" in nft[0]["detail"]
    assert "no counter" in nft[0]["detail"]
    assert [f["command"] for f in j["fix"]] == [f"nft delete rule inet fw forward handle {handle}"]
    assert r.stderr.strip() == "", r.stderr
    assert {n: _ruleset(lab, n) for n in S.SEED_NODES} == before
