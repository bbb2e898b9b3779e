"""Ansible inventories as hosts files (wgtrace/hosts/inventory.py, sshargs.py): INI and YAML, group
variables inherited, one sentence per problem (an unknown ansible_ key, a password, an ssh word
that would run a command, an address that is not one, a name twice), nothing contacted."""
from __future__ import annotations

import pytest

from wgtrace.errors import LabFileError
from wgtrace.hosts.file import load_hosts

INI = """# the operator's own inventory
[vpn]
vps.example.com ansible_host=203.0.113.10 ansible_user=ubuntu ansible_become=true
alice ansible_host=192.168.1.20 ansible_port=2222

[vpn:vars]
ansible_ssh_common_args='-o StrictHostKeyChecking=accept-new -J jump@198.51.100.1'
wireguard_port=51820

[lan]
nas ansible_host=fd00::10 ansible_user=root

[office:children]
lan

[office:vars]
ansible_ssh_extra_args="-o ConnectTimeout=3"

[control]
laptop ansible_connection=local
"""

YAML = """all:
  vars:
    ansible_user: root
  children:
    vpn:
      vars:
        ansible_ssh_common_args: -o UserKnownHostsFile=/etc/wgtrace/known
      hosts:
        vps:
          ansible_host: 203.0.113.10
        alice:
          ansible_host: 192.168.1.20
          ansible_user: alice
          ansible_become: yes
"""


def load(tmp_path, text, name="inventory.ini"):
    p = tmp_path / name
    p.write_text(text)
    return load_hosts(str(p))


def errors(tmp_path, text, name="inventory.ini") -> list[str]:
    with pytest.raises(LabFileError) as e:
        load(tmp_path, text, name)
    return e.value.details or [e.value.message]


def test_ini_inventory(tmp_path):
    hf = load(tmp_path, INI)
    assert set(hf.hosts) == {"vps", "alice", "nas", "laptop"}
    vps, alice, nas, laptop = (hf.hosts[n] for n in ("vps", "alice", "nas", "laptop"))
    assert vps.ssh == "ubuntu@203.0.113.10" and vps.sudo
    assert vps.ssh_args == ("-o", "StrictHostKeyChecking=accept-new", "-J", "jump@198.51.100.1")
    assert alice.ssh == "192.168.1.20" and alice.port == 2222 and not alice.sudo
    assert nas.ssh == "root@fd00::10" and nas.ssh_args == ("-o", "ConnectTimeout=3")   # inherited from office
    assert laptop.local and laptop.ssh == ""
    assert set(hf.groups["vpn"]) == {"vps", "alice"} and hf.groups["lan"] == ["nas"]


def test_yaml_inventory(tmp_path):
    hf = load(tmp_path, YAML, "hosts.yml")
    assert hf.hosts["vps"].ssh == "root@203.0.113.10" and not hf.hosts["vps"].sudo
    assert hf.hosts["alice"].ssh == "alice@192.168.1.20" and hf.hosts["alice"].sudo
    assert hf.hosts["vps"].ssh_args == ("-o", "UserKnownHostsFile=/etc/wgtrace/known")


@pytest.mark.parametrize("line, words", [
    ("h1 ansible_host=10.0.0.300", "not an address"),
    ("h1 ansible_host=10.0.0.1 ansible_password=hunter2", "never with a password"),
    ("h1 ansible_host=10.0.0.1 ansible_colour=blue", "unknown key"),
    ("h1 ansible_host=10.0.0.1 \"ansible_ssh_common_args=-o ProxyCommand=nc %h %p\"", "run a command"),
    ("h1 ansible_host=10.0.0.1 ansible_ssh_extra_args='-oLocalCommand=touch /tmp/x -oPermitLocalCommand=yes'",
     "run a command"),
    ("h1 ansible_host=10.0.0.1 ansible_ssh_extra_args='-o ControlMaster=no'", "its own connection"),
    ("h1 ansible_host=10.0.0.1 ansible_ssh_extra_args='-F /tmp/other'", "not an ssh word"),
    ("h1 ansible_host=10.0.0.1 ansible_user='root;id'", "not a plain user name"),
    ("h1 ansible_host=10.0.0.1 ansible_become_method=su", "sudo -n only"),
    ("web[01:50] ansible_user=root", "not expanded"),
])
def test_bad_inventory_lines(tmp_path, line, words):
    errs = errors(tmp_path, f"[g]\n{line}\n")
    assert len(errs) == 1 and words in errs[0], errs
    assert errs[0].startswith(str(tmp_path / "inventory.ini"))


def test_every_problem_at_once_and_twice(tmp_path):
    errs = errors(tmp_path, "[g]\na ansible_host=10.0.0.1\nb ansible_host=10.0.0.1\nc ansible_host=10.0.0.2\n"
                            "c ansible_host=10.0.0.3\nd ansible_host=300.1.1.1\n")
    assert any("appears twice" in e for e in errs)
    assert any("one host, one name" in e for e in errs)
    assert any("not an address" in e for e in errs)


def test_names_that_collide_as_node_names(tmp_path):
    errs = errors(tmp_path, "[g]\nvps.example.com\nvps.example.org\n")
    assert any("node name 'vps'" in e for e in errs)


def test_hosts_file_targets_are_addresses_when_they_look_like_one(tmp_path):
    p = tmp_path / "hosts.toml"
    p.write_text('[hosts.a]\nssh = "root@10.0.0.300"\n[hosts.b]\nssh = "root@fd00::1"\n')
    with pytest.raises(LabFileError) as e:
        load_hosts(str(p))
    assert len(e.value.details) == 1 and "not an address" in e.value.details[0]


def test_local_host_in_a_hosts_file(tmp_path):
    p = tmp_path / "hosts.toml"
    p.write_text('[hosts.laptop]\nlocal = true\n[hosts.vps]\nssh = "root@203.0.113.10"\n')
    hf = load_hosts(str(p))
    assert hf.hosts["laptop"].local and not hf.hosts["vps"].local
    p.write_text('[hosts.laptop]\nlocal = true\nssh = "x"\n[hosts.pc]\nlocal = true\n')
    with pytest.raises(LabFileError) as e:
        load_hosts(str(p))
    assert any("not reached over SSH" in d for d in e.value.details)
    assert any("only one host" in d for d in e.value.details)
