"""The inventory: the example fleet, Ansible's own reading of it, and every bad case."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ipsinfra.errors import InventoryError, NodeNotFound, VdsNotFound
from ipsinfra.inventory import (
    Fleet,
    VaultedValue,
    dump,
    fleet_to_dict,
    host_vars,
    load,
    load_dict,
)
from ipsinfra.models import HypervisorKind, SecretRef
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventory" / "example"
CASES = REPO / "tests" / "data" / "inventories"
ANSIBLE_INVENTORY = REPO / ".venv" / "bin" / "ansible-inventory"


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load(EXAMPLE)


# --- the example fleet ---------------------------------------------------------
def test_example_has_the_whole_fleet(fleet: Fleet) -> None:
    assert set(fleet.sites) == {"msk1", "fra1"}
    assert fleet.sites["msk1"].own_network is True
    assert fleet.sites["fra1"].own_network is False
    assert fleet.sites["fra1"].dc_reaction_hours == 24
    assert set(fleet.nodes) == {"kvm1", "kvm2", "pve1"}
    assert set(fleet.switches) == {"sw1-msk1", "sw2-msk1"}
    assert set(fleet.dedicated) == {"ded1", "ded2"}
    assert set(fleet.clients) == {"c1", "c2", "c3", "c4"}
    assert len(fleet.vds) == 6
    assert fleet.path == EXAMPLE


def test_example_nodes(fleet: Fleet) -> None:
    kvm1, kvm2, pve1 = fleet.nodes["kvm1"], fleet.nodes["kvm2"], fleet.nodes["pve1"]
    assert kvm1.kind is HypervisorKind.LIBVIRT
    assert pve1.kind is HypervisorKind.PROXMOX
    assert (kvm1.site, kvm2.site, pve1.site) == ("msk1", "msk1", "fra1")
    assert kvm1.ssh_host == "203.0.113.10"  # from ansible_host
    assert kvm1.ssh_user == "root"  # ansible_user, inline group var of `nodes`
    assert pve1.secret == SecretRef(env="IPSINFRA_PVE1_TOKEN")
    assert pve1.pve_node == "pve1"
    # Distinct last-two octets: the §8.5 names of the nodes never collide.
    octets = {".".join(str(n.main_ip).split(".")[2:]) for n in fleet.nodes.values()}
    assert len(octets) == 3
    for node in fleet.nodes.values():
        assert node.main_ip in ipaddress.ip_network("203.0.113.0/24") or node.main_ip in ipaddress.ip_network(
            "198.51.100.0/24"
        )


def test_example_precedence(fleet: Fleet) -> None:
    assert fleet.nodes["kvm1"].bridge == "br0"  # group_vars/libvirt_nodes.yml
    assert fleet.nodes["kvm2"].bridge == "br1"  # host_vars beat group_vars
    assert fleet.nodes["pve1"].bridge == "vmbr0"  # group_vars/proxmox_nodes.yml
    assert fleet.vds["VPS1001(113.10)"].autostart is True  # group_vars/vds.yml
    assert fleet.vds["VPS1004(113.20)"].autostart is False  # host_vars


def test_example_vds(fleet: Fleet) -> None:
    trial = [v for v in fleet.vds.values() if v.trial_end is not None]
    blocked = [v for v in fleet.vds.values() if v.blocked]
    assert [v.name for v in trial] == ["VPS1002(113.10)"]
    assert trial[0].trial_end == dt.date(2017, 6, 8)
    assert [v.name for v in blocked] == ["VPS1004(113.20)"]
    assert not blocked[0].should_run
    v = fleet.vds["VPS1001(113.10)"]
    assert (v.order, v.node, v.client, v.cpuset) == (1001, "kvm1", "c1", "1-40")
    assert v.macs == ["52:54:00:10:01:01"]
    assert fleet.vds["VPS1005(100.30)"].macs == ["bc:24:11:30:05:01"]
    assert fleet.dedicated["ded1"].macs == ["52:54:00:aa:00:01", "52:54:00:aa:00:02"]
    assert (fleet.dedicated["ded1"].switch, fleet.dedicated["ded1"].port) == ("sw1-msk1", "Gi0/5")


def test_helpers(fleet: Fleet) -> None:
    assert fleet.node_of("VPS1005(100.30)").name == "pve1"
    assert [v.name for v in fleet.vds_on("kvm1")] == ["VPS1001(113.10)", "VPS1002(113.10)"]
    assert [v.name for v in fleet.vds_on(fleet.nodes["pve1"])] == ["VPS1005(100.30)", "VPS1006(100.30)"]
    assert fleet.owners_of_ip("203.0.113.104") == ["VPS1003(113.20)"]
    assert fleet.owners_of_ip(ipaddress.ip_address("203.0.113.202")) == ["ded2"]
    assert fleet.owners_of_ip("192.0.2.99") == []
    assert fleet.inventory_hostname("VPS1001(113.10)") == "VPS1001-113-10"
    assert fleet.inventory_hostname("kvm1") == "kvm1"
    with pytest.raises(VdsNotFound):
        fleet.node_of("VPS9999(113.10)")
    with pytest.raises(InventoryError, match="ip: value 'nope'"):
        fleet.owners_of_ip("nope")


def test_node_of_a_hand_built_fleet_with_a_missing_node(fleet: Fleet) -> None:
    broken = fleet.model_copy(update={"nodes": {}})
    with pytest.raises(NodeNotFound, match="kvm1"):
        broken.node_of("VPS1001(113.10)")


def test_owners_of_a_shared_ip() -> None:
    data = fleet_to_dict(load(EXAMPLE))
    data["vds"]["VPS1002(113.10)"]["ips"] = ["203.0.113.101"]
    shared = load_dict(data)
    assert shared.owners_of_ip("203.0.113.101") == ["VPS1001(113.10)", "VPS1002(113.10)"]


def test_no_literal_secrets_in_the_example() -> None:
    for path in EXAMPLE.rglob("*.yml"):
        text = path.read_text()
        for line in text.splitlines():
            if "secret:" in line and not line.lstrip().startswith("#"):
                assert "{env:" in line or "{file:" in line, f"{path}: {line}"


def test_load_is_fast_and_reads_the_hosts_file_too(fleet: Fleet) -> None:
    start = time.perf_counter()
    again = load(EXAMPLE / "hosts.yml")
    assert time.perf_counter() - start < 1.0
    assert again.vds == fleet.vds


# --- Ansible reads the same inventory --------------------------------------------
def ansible_list(inventory: Path, tmp_path: Path) -> dict[str, Any]:
    """What Ansible itself reads from the inventory (``ansible-inventory --list``)."""
    require(ANSIBLE_INVENTORY.exists(), f"{ANSIBLE_INVENTORY} is absent (install the dev venv: scripts/dev)")
    env = {
        **os.environ,
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(
        [str(ANSIBLE_INVENTORY), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[WARNING]" not in proc.stderr, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


@pytest.mark.parametrize("inventory", [EXAMPLE, CASES / "ok_minimal"], ids=["example", "ok_minimal"])
def test_ansible_inventory_sees_the_same_hosts_groups_and_vars(inventory: Path, tmp_path: Path) -> None:
    listed = ansible_list(inventory, tmp_path)
    fleet = load(inventory)
    theirs = {name: body for name, body in listed.items() if name != "_meta"}
    ours = {name: g for name, g in fleet.groups.items() if g.hosts or g.children or name in theirs}
    assert set(theirs) == set(ours)
    for name, body in theirs.items():
        assert set(body.get("hosts", [])) == set(ours[name].hosts), name
        assert set(body.get("children", [])) == set(ours[name].children), name
    their_hosts = {h for body in theirs.values() for h in body.get("hosts", [])}
    assert their_hosts == set(fleet.hostnames)
    # Same merged variables, host by host: our precedence is Ansible's.
    mine = host_vars(inventory)
    for host, hvars in listed["_meta"]["hostvars"].items():
        assert _normal(mine[host]) == hvars, host


# --- load_dict / dump -------------------------------------------------------------
def test_dump_then_load_round_trips(fleet: Fleet, tmp_path: Path) -> None:
    out = dump(fleet, tmp_path / "inv")
    again = load(out)
    assert again.sites == fleet.sites
    assert again.nodes == fleet.nodes
    assert again.vds == fleet.vds
    assert again.clients == fleet.clients
    assert again.switches == fleet.switches
    assert again.dedicated == fleet.dedicated
    assert again.hostnames == fleet.hostnames
    assert (out / "host_vars" / "VPS1001-113-10.yml").is_file()


def test_dumped_inventory_is_valid_for_ansible(fleet: Fleet, tmp_path: Path) -> None:
    out = dump(fleet, tmp_path / "inv")
    listed = ansible_list(out, tmp_path)
    assert set(listed["vds"]["hosts"]) == {fleet.inventory_hostname(v) for v in fleet.vds}
    assert listed["_meta"]["hostvars"]["pve1"]["secret"] == {"env": "IPSINFRA_PVE1_TOKEN"}


def test_load_dict_builds_a_lab_fleet() -> None:
    fleet = load_dict(
        {
            "sites": {"lab": {"dc": "lab", "own_network": True}},
            "clients": {"c1": {"name": "Lab Client"}},
            "nodes": {
                "node1": {
                    "site": "lab",
                    "kind": "libvirt",
                    "main_ip": "127.0.1.10",
                    "uri": "test:///default",
                    "cpus": 4,
                }
            },
            "vds": {"VPS42(1.10)": {"node": "node1", "vcpus": 1, "memory_mib": 256, "client": "c1"}},
        }
    )
    assert fleet.node_of("VPS42(1.10)").uri == "test:///default"
    assert fleet.vds["VPS42(1.10)"].order == 42
    assert fleet.inventory_hostname("VPS42(1.10)") == "VPS42-1-10"
    assert fleet.path is None


def test_load_dict_runs_the_same_checks() -> None:
    with pytest.raises(InventoryError, match=r"vds\.VPS42\(9\.9\)\.vds_name: value 'VPS42\(9\.9\)'"):
        load_dict(
            {
                "sites": {"lab": {"dc": "lab"}},
                "nodes": {
                    "node1": {
                        "site": "lab",
                        "kind": "libvirt",
                        "main_ip": "127.0.1.10",
                        "uri": "x",
                        "cpus": 1,
                    }
                },
                "vds": {"VPS42(9.9)": {"node": "node1", "vcpus": 1, "memory_mib": 256}},
            }
        )
    with pytest.raises(InventoryError, match="unknown sections"):
        load_dict({"hypervisors": {}})


# --- bad inventories ---------------------------------------------------------------
# case, file the message must name (relative to the case), field, value (None: a secret, must not appear)
BAD = [
    ("malformed_yaml", "host_vars/kvm1.yml", "line 4", None),
    ("unknown_site", "host_vars/kvm1.yml", "nodes.kvm1.site", "msk9"),
    ("unknown_group_vars", "group_vars/libvirt_node.yml", "unknown group", "libvirt_node"),
    ("site_without_data", "group_vars/msk1.yml", "sites.msk1.ipsinfra_site", None),
    ("duplicate_vds", "hosts.yml", "vds.VPS1001(113.10).vds_name", "VPS1001(113.10)"),
    ("octets_mismatch", "hosts.yml", "vds.VPS1001(113.20).vds_name", "VPS1001(113.20)"),
    ("unknown_node", "hosts.yml", "vds.VPS1001(113.10).node", "kvm9"),
    ("bad_order", "hosts.yml", "vds.VPS1001(113.10).vds_order", "12a4"),
    ("bad_vds_name", "hosts.yml", "vds.VPS1001-113-10.vds_name", "VPS12a4(113.10)"),
    ("bad_node_ip", "host_vars/kvm1.yml", "nodes.kvm1.main_ip", "300.1.1.1"),
    ("unknown_field", "host_vars/kvm1.yml", "nodes.kvm1.main_IP", None),  # its value is never shown
    ("bad_mac", "hosts.yml", "vds.VPS1001(113.10).nics.0.mac", "52:54:zz:00:00:01"),
    ("group_cycle", "hosts.yml", "cycle", "nodes"),
]
SECRET_CASES = [
    ("literal_secret", "hosts.yml", "sw1.password", "hunter2"),
    ("literal_secret_ref", "host_vars/kvm1.yml", "secret", "Zq8-t0ken-xK41"),
    ("vault_inline_secret", "host_vars/kvm1.yml", "nodes.kvm1.secret", "ANSIBLE_VAULT"),
]


@pytest.mark.parametrize(("case", "file", "field", "value"), BAD, ids=[c[0] for c in BAD])
def test_bad_inventory_is_refused_naming_file_field_value(
    case: str, file: str, field: str, value: str | None
) -> None:
    with pytest.raises(InventoryError) as info:
        load(CASES / case)
    message = str(info.value)
    assert message.startswith(str(CASES / case / file) + ":"), message
    assert field in message
    if value is not None:
        assert repr(value) in message


@pytest.mark.parametrize(("case", "file", "field", "secret"), SECRET_CASES, ids=[c[0] for c in SECRET_CASES])
def test_literal_secret_is_refused_without_echoing_it(case: str, file: str, field: str, secret: str) -> None:
    assert secret in (CASES / case / file).read_text()  # the case really holds it
    with pytest.raises(InventoryError) as info:
        load(CASES / case)
    message = str(info.value)
    assert message.startswith(str(CASES / case / file) + ":"), message
    assert field in message
    assert secret not in message
    assert "hunter2" not in repr(info.value.args)


def test_vaulted_values_are_opaque(tmp_path: Path) -> None:
    fleet = load(CASES / "ok_vaulted")
    assert set(fleet.nodes) == {"kvm1"}
    value = host_vars(CASES / "ok_vaulted")["kvm1"]["ansible_become_password"]
    assert isinstance(value, VaultedValue)
    assert "ANSIBLE_VAULT" not in repr(value) and "ANSIBLE_VAULT" not in str(value)


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(InventoryError, match=r"line 4, column \d+: malformed YAML"):
        load(CASES / "malformed_yaml")


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(CASES / "ok_minimal", inv)
    with (inv / "host_vars" / "kvm1.yml").open("a") as f:
        f.write("cpus: 16\n")
    with pytest.raises(InventoryError, match=r"kvm1\.yml: line 5.*duplicate key 'cpus' \(first at line 4\)"):
        load(inv)


def test_unknown_host_vars_file_is_refused(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(CASES / "ok_minimal", inv)
    (inv / "host_vars" / "kvm3.yml").write_text("cpus: 1\n")
    with pytest.raises(InventoryError, match=r"kvm3\.yml: host: value 'kvm3': unknown host"):
        load(inv)


def test_missing_inventory() -> None:
    with pytest.raises(InventoryError, match="no such inventory"):
        load(CASES / "does-not-exist")


def test_host_in_two_kind_groups_is_refused(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(CASES / "ok_minimal", inv)
    text = (
        (inv / "hosts.yml")
        .read_text()
        .replace("        sw1:\n          platform", "        kvm1:\n        sw1:\n          platform")
    )
    (inv / "hosts.yml").write_text(text)
    with pytest.raises(InventoryError, match=r"hosts\.kvm1: value \['nodes', 'switches'\]"):
        load(inv)


def test_inline_group_vars_lose_to_group_vars_files(tmp_path: Path) -> None:
    """Ansible's order: inventory-file group vars < group_vars/ < host vars < host_vars/."""
    inv = tmp_path / "inv"
    shutil.copytree(CASES / "ok_minimal", inv)
    text = (inv / "hosts.yml").read_text()
    text = text.replace(
        "        libvirt_nodes:\n", "        libvirt_nodes:\n          vars:\n            bridge: inline\n"
    )
    (inv / "hosts.yml").write_text(text)
    assert load(inv).nodes["kvm1"].bridge == "inline"
    (inv / "group_vars" / "nodes.yml").write_text("bridge: from-parent-file\n")
    assert load(inv).nodes["kvm1"].bridge == "from-parent-file"  # any group_vars file beats inline vars
    (inv / "group_vars" / "libvirt_nodes.yml").write_text("kind: libvirt\nbridge: from-child-file\n")
    assert load(inv).nodes["kvm1"].bridge == "from-child-file"  # child group beats parent
    with (inv / "host_vars" / "kvm1.yml").open("a") as f:
        f.write("bridge: from-host\n")
    assert load(inv).nodes["kvm1"].bridge == "from-host"
