"""The hosts file (wgtrace/hosts/file.py): what it accepts, and one clear error per problem with
file and key; ssh targets are plain words, never options or shell; no place for secrets.
Also: tests/labs/seedssh.toml stays the seed network plus its management additions."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from wgtrace.errors import LabFileError
from wgtrace.hosts.file import load_hosts, parse_hosts
from wgtrace.model.labfile import load_lab

REPO = Path(__file__).resolve().parents[2]


def parse(text: str, tmp_path: Path):
    p = tmp_path / "hosts.toml"
    p.write_text(text)
    return load_hosts(str(p))


def errors(text: str, tmp_path: Path) -> list[str]:
    with pytest.raises(LabFileError) as e:
        parse(text, tmp_path)
    return e.value.details


def test_smallest_file(tmp_path):
    (tmp_path / "cfg").write_text("Host *\n")
    hf = parse('ssh_config = "cfg"\n[hosts.home]\nssh = "root@192.0.2.10"\n'
               '[hosts.bcc]\nssh = "ubuntu@relay.example"\nsudo = true\nport = 2222\nignore = ["mgmt0"]\n', tmp_path)
    assert hf.ssh_config == str(tmp_path / "cfg")
    assert hf.hosts["home"].ssh == "root@192.0.2.10" and not hf.hosts["home"].sudo
    assert hf.hosts["bcc"].sudo and hf.hosts["bcc"].port == 2222 and hf.hosts["bcc"].ignore == ("mgmt0",)
    assert hf.name == "hosts"


def test_alias_and_global_ignore(tmp_path):
    hf = parse('ignore = ["mgmt0"]\n[hosts.relay-1]\nssh = "relay1"\nignore = ["eth9"]\n', tmp_path)
    assert hf.hosts["relay-1"].ssh == "relay1" and hf.hosts["relay-1"].ignore == ("mgmt0", "eth9")


@pytest.mark.parametrize("target, words", [
    ("-oProxyCommand=touch /tmp/x", "never an option"),
    ("root@host; rm -rf /", "not a plain ssh target"),
    ("root@$(id)", "not a plain ssh target"),
    ("root@host name", "not a plain ssh target"),
    ("root:hunter2@host", "holds no secrets"),
    ("", "required"),
])
def test_ssh_targets_are_plain_words(tmp_path, target, words):
    errs = errors(f'[hosts.home]\nssh = "{target}"\n', tmp_path)
    assert len(errs) == 1 and "hosts.home.ssh" in errs[0] and words in errs[0], errs
    assert errs[0].startswith(str(tmp_path / "hosts.toml"))


def test_every_problem_at_once_with_its_key(tmp_path):
    errs = errors('ssh_config = "nowhere"\nbogus = 1\n[hosts.Home]\nssh = "a"\n'
                  '[hosts.ok]\nssh = "b"\nport = 70000\nsudo = "yes"\npassword = "x"\nidentity_file = "k"\n', tmp_path)
    text = "\n".join(errs)
    for key in ("ssh_config", ": bogus:", "hosts.Home", "hosts.ok.port", "hosts.ok.sudo", "hosts.ok.password",
                "hosts.ok.identity_file"):
        assert key in text, (key, text)
    assert "holds no secrets" in text and len(errs) == 7
    # a bad name does not hide the rest of its table
    errs = errors('[hosts.Home]\nssh = "-oProxyCommand=x"\npassword = "x"\n', tmp_path)
    assert len(errs) == 3 and all("hosts.Home" in e for e in errs)


def test_two_names_for_one_host_and_empty(tmp_path):
    assert "one host, one name" in errors('[hosts.a]\nssh = "x@h"\n[hosts.b]\nssh = "x@h"\n', tmp_path)[0]
    assert "at least one" in errors('ssh_config = "/dev/null"\n', tmp_path)[-1]


def test_not_toml_not_utf8(tmp_path):
    p = tmp_path / "hosts.toml"
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(LabFileError, match="not UTF-8"):
        load_hosts(str(p))
    p.write_text("[hosts\n")
    with pytest.raises(LabFileError, match="not valid TOML"):
        load_hosts(str(p))
    with pytest.raises(LabFileError, match="cannot read"):
        load_hosts(str(tmp_path / "missing.toml"))


def test_name_from_file(tmp_path):
    assert parse_hosts({"hosts": {"a": {"ssh": "a"}}}, "/x/My-Office_2.toml").name == "myoffice2"
    assert parse_hosts({"hosts": {"a": {"ssh": "a"}}}, "/x/42.toml").name == "hosts42"


def test_seedssh_is_the_seed_plus_management():
    seed = tomllib.loads((REPO / "labs" / "seed.toml").read_text())
    ssh = tomllib.loads((REPO / "tests" / "labs" / "seedssh.toml").read_text())
    for name, node in seed["nodes"].items():
        got = dict(ssh["nodes"][name])
        assert got.pop("addresses").pop("mgmt0").startswith("172.31.255.")
        got["addresses"] = {k: v for k, v in ssh["nodes"][name]["addresses"].items() if k != "mgmt0"}
        assert got.pop("services", None) == [{"kind": "ssh", "port": 22}]
        node = {k: v for k, v in node.items() if k != "services"}
        assert got == node, name
    assert ssh["links"][:len(seed["links"])] == seed["links"]
    assert {k: v for k, v in seed.items() if k not in ("nodes", "links", "name")} == \
        {k: v for k, v in ssh.items() if k not in ("nodes", "links", "name")}
    load_lab(str(REPO / "tests" / "labs" / "seedssh.toml"))
