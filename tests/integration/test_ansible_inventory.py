"""The ipsinfra.infra.fleet inventory plugin through the real ansible-inventory/ansible CLIs, on the lab.

The lab has both hypervisor kinds: kvm1/kvm2 are real libvirtd daemons, pve1
is fakepve over HTTPS. The plugin runs inside ansible-inventory, a separate
process, and opens its own connections to them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ipsinfra
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import VdsState

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.slow]

VENV_BIN = Path(sys.executable).parent
COLLECTIONS = Path(ipsinfra.__file__).resolve().parent


def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        **extra,
    )
    env.pop("ANSIBLE_INVENTORY_CACHE", None)
    return env


def cli(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        env=ansible_env(**env),
        timeout=120,
        check=False,
    )


def trusted(value: Any) -> Any:
    """ansible-inventory marks plugin-supplied strings untrusted (never templated): unwrap them.

    That is what we want: a VDS description a client can influence must never
    be evaluated as Jinja on the controller.
    """
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trusted(v) for v in value]
    return value


def inventory_list(config: Path, *extra: str) -> dict[str, Any]:
    done = cli("ansible-inventory", "-i", str(config), "--list", *extra)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = trusted(json.loads(done.stdout))
    return data


def hosts_of(data: dict[str, Any], group: str) -> list[str]:
    return sorted(data.get(group, {}).get("hosts", []))


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(mode="daemon") as running:
        yield running


@pytest.fixture
def config(lab: Lab, tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yml"
    # Relative to the config file's folder, as a checked-in fleet.yml would say it.
    rel = os.path.relpath(lab.inventory_dir, tmp_path)
    path.write_text(f"plugin: ipsinfra.infra.fleet\ninventory: {rel}\ntoday: '2017-06-09'\n")
    return path


def test_every_vds_of_both_hypervisor_kinds_with_its_vars_and_groups(config: Path) -> None:
    data = inventory_list(config)
    hostvars = data["_meta"]["hostvars"]
    assert sorted(hostvars) == [
        "VPS1001-113-10",
        "VPS1002-113-10",
        "VPS1003-113-20",
        "VPS1004-113-20",
        "VPS1005-100-30",
        "VPS1006-100-30",
    ]
    v1 = hostvars["VPS1001-113-10"]
    assert v1["vds_name"] == "VPS1001(113.10)"
    assert (v1["node"], v1["site"], v1["hypervisor"]) == ("kvm1", "msk1", "libvirt")
    assert v1["ips"] == ["203.0.113.101"]
    assert v1["vds_state"] == "running"
    assert v1["blocked"] is False
    assert v1["trial_end"] is None
    v5 = hostvars["VPS1005-100-30"]
    assert (v5["node"], v5["site"], v5["hypervisor"]) == ("pve1", "fra1", "proxmox")
    assert v5["vds_name"] == "VPS1005(100.30)"
    assert v5["backend_id"]  # the Proxmox vmid
    trial = hostvars["VPS1002-113-10"]
    assert trial["trial_end"] == "2017-06-08"
    assert trial["trial_expired"] is True  # the config's today is 2017-06-09
    blocked = hostvars["VPS1004-113-20"]
    assert blocked["blocked"] is True
    assert blocked["vds_state"] == "stopped"

    assert hosts_of(data, "node_kvm1") == ["VPS1001-113-10", "VPS1002-113-10"]
    assert hosts_of(data, "node_pve1") == ["VPS1005-100-30", "VPS1006-100-30"]
    assert hosts_of(data, "site_msk1") == [
        "VPS1001-113-10",
        "VPS1002-113-10",
        "VPS1003-113-20",
        "VPS1004-113-20",
    ]
    assert hosts_of(data, "site_fra1") == ["VPS1005-100-30", "VPS1006-100-30"]
    assert hosts_of(data, "stopped") == ["VPS1004-113-20"]
    assert len(hosts_of(data, "running")) == 5
    assert hosts_of(data, "blocked") == ["VPS1004-113-20"]
    assert hosts_of(data, "trial") == ["VPS1002-113-10"]
    assert hosts_of(data, "trial_expired") == ["VPS1002-113-10"]


def test_host_patterns_work_with_the_ansible_cli(config: Path) -> None:
    done = cli("ansible", "-i", str(config), "node_kvm2:&running", "--list-hosts")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["hosts", "(1):", "VPS1003-113-20"]
    done = cli("ansible", "-i", str(config), "site_msk1:!blocked", "--list-hosts")
    assert done.returncode == 0, done.stderr
    assert "VPS1004-113-20" not in done.stdout
    assert "hosts (3):" in done.stdout


def test_constructed_options_compose_and_keyed_groups(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "ipsinfra.yml"
    path.write_text(
        "plugin: ipsinfra.infra.fleet\n"
        f"inventory: {lab.inventory_dir}\n"
        "nodes: [pve1]\n"
        "compose:\n  house_name: vds_name\n"
        "keyed_groups:\n  - key: os\n    prefix: os\n"
    )
    data = inventory_list(path)
    assert sorted(data["_meta"]["hostvars"]) == ["VPS1005-100-30", "VPS1006-100-30"]
    assert data["_meta"]["hostvars"]["VPS1005-100-30"]["house_name"] == "VPS1005(100.30)"
    assert any(group.startswith("os_") for group in data)


def test_a_dead_node_is_a_warning_and_the_others_are_listed(lab: Lab, tmp_path: Path) -> None:
    dead = tmp_path / "inventory"
    subprocess.run(["cp", "-a", str(lab.inventory_dir), str(dead)], check=True)
    kvm2 = dead / "host_vars" / "kvm2.yml"
    text = kvm2.read_text()
    kvm2.write_text(
        "\n".join(
            "uri: qemu+unix:///session?socket=/nonexistent/libvirt-sock" if line.startswith("uri:") else line
            for line in text.splitlines()
        )
        + "\n"
    )
    path = tmp_path / "fleet.yml"
    path.write_text(f"plugin: ipsinfra.infra.fleet\ninventory: {dead}\n")
    done = cli("ansible-inventory", "-i", str(path), "--list")
    assert done.returncode == 0, done.stderr
    data = trusted(json.loads(done.stdout))
    assert "node kvm2" in done.stderr
    assert len(data["_meta"]["hostvars"]) == 6
    assert hosts_of(data, "unknown") == ["VPS1003-113-20", "VPS1004-113-20"]
    assert len(hosts_of(data, "running")) == 4


def test_the_inventory_cache_is_used_until_flushed(lab: Lab, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    path = tmp_path / "fleet.yml"
    path.write_text(
        "plugin: ipsinfra.infra.fleet\n"
        f"inventory: {lab.inventory_dir}\n"
        "cache: true\n"
        "cache_plugin: ansible.builtin.jsonfile\n"
        f"cache_connection: {cache_dir}\n"
        "cache_timeout: 3600\n"
    )
    first = inventory_list(path)
    assert first["_meta"]["hostvars"]["VPS1006-100-30"]["vds_state"] == "running"
    assert any(cache_dir.iterdir())

    lab.driver("pve1").stop("VPS1006(100.30)", timeout=5)
    try:
        cached = inventory_list(path)
        assert cached["_meta"]["hostvars"]["VPS1006-100-30"]["vds_state"] == "running"  # from the cache
        fresh = inventory_list(path, "--flush-cache")
        assert fresh["_meta"]["hostvars"]["VPS1006-100-30"]["vds_state"] == "stopped"
        assert hosts_of(fresh, "stopped") == ["VPS1004-113-20", "VPS1006-100-30"]
    finally:
        lab.driver("pve1").start("VPS1006(100.30)")
    assert lab.driver("pve1").get_vds("VPS1006(100.30)").state is VdsState.RUNNING
