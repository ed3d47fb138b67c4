"""parse_vm and friends on answers recorded from the PVE API (strings and numbers)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ipsinfra.hypervisors.proxmox import (
    house_name,
    parse_disk,
    parse_nic,
    parse_vm,
    parse_vnc,
    with_meta,
)
from ipsinfra.models import Disk, VdsState

# GET /nodes/pve1/qemu row (fakepve 0.5, PVE 9 shape).
ROW_STOPPED: dict[str, Any] = {
    "vmid": 100,
    "name": "VPS1001-34-56",
    "status": "stopped",
    "cpus": 2,
    "cpu": 0,
    "mem": 0,
    "maxdisk": 1073741824,
    "maxmem": 67108864,
    "uptime": 0,
    "serial": 0,
    "lock": None,
}
ROW_RUNNING: dict[str, Any] = dict(ROW_STOPPED, status="running", pid=1100, uptime=42)

# GET /nodes/pve1/qemu/100/config as PVE 9 answers it: numbers for integer/boolean options.
CONFIG_TYPED: dict[str, Any] = {
    "name": "VPS1001-34-56",
    "cores": 2,
    "sockets": 1,
    "memory": "64",
    "onboot": 1,
    "affinity": "1-3",
    "net0": "virtio=52:54:00:00:E9:01,bridge=vmbr0,firewall=1",
    "args": "-vnc 127.0.0.1:100",
    "description": "ipsinfra-name: VPS1001(34.56)\nipsinfra-ips: 185.12.34.7\nVIP",
    "ide2": "local-lvm:vm-100-cloudinit,media=cdrom",
    "scsi0": "local-lvm:vm-100-disk-1,size=1G",
    "scsihw": "virtio-scsi-single",
    "boot": "order=scsi0;ide2;net0",
    "cipassword": "**********",
    "digest": "80043c7b333b8287832e1c7e3096d1e6092bf1d3",
}
# The same config as fakepve's stock handler (and older PVE) sends it: every value a string.
CONFIG_STRINGS: dict[str, Any] = {k: str(v) for k, v in CONFIG_TYPED.items()}


@pytest.mark.parametrize("config", [CONFIG_TYPED, CONFIG_STRINGS], ids=["ints", "strings"])
def test_parse_vm_recorded(config: dict[str, Any]) -> None:
    vds = parse_vm(ROW_STOPPED, config, "node-a")
    assert vds.name == "VPS1001(34.56)" and vds.order == 1001 and vds.node == "node-a"
    assert (vds.vcpus, vds.cpuset, vds.memory_mib, vds.autostart) == (2, "1-3", 64, True)
    assert vds.macs == ["52:54:00:00:e9:01"] and vds.nics[0].bridge == "vmbr0"
    assert (str(vds.vnc_listen), vds.vnc_port) == ("127.0.0.1", 6000)
    assert vds.disks == [Disk(name="scsi0", size_gib=1, storage="local-lvm")]
    assert vds.ips == [ipaddress.ip_address("185.12.34.7")]
    assert (vds.state, vds.backend_id, vds.comment) == (VdsState.STOPPED, "100", "VIP")


def test_vcpus_mapping() -> None:
    assert parse_vm(ROW_STOPPED, {"cores": "2", "sockets": "2"}, "n").vcpus == 4
    assert parse_vm(ROW_STOPPED, {"cores": 4, "sockets": 2, "vcpus": 3}, "n").vcpus == 3
    assert parse_vm(ROW_STOPPED, {}, "n").vcpus == 2  # no cores/sockets: the row's cpus


def test_state_and_memory_forms() -> None:
    assert parse_vm(ROW_RUNNING, {"memory": "current=2048"}, "n").state == VdsState.RUNNING
    assert parse_vm(ROW_RUNNING, {"memory": 2048}, "n").memory_mib == 2048
    assert parse_vm(dict(ROW_RUNNING, qmpstatus="paused"), {}, "n").state == VdsState.PAUSED
    assert parse_vm(dict(ROW_RUNNING, lock="migrate"), {}, "n").state == VdsState.MIGRATING
    assert parse_vm(dict(ROW_STOPPED, status="unknown"), {}, "n").state == VdsState.UNKNOWN
    assert parse_vm(ROW_STOPPED, {}, "n").memory_mib == 64  # from maxmem


def test_names() -> None:
    assert house_name("x\nipsinfra-name: VPS7(1.2)\n", "whatever") == "VPS7(1.2)"
    assert house_name("no tag here", "VPS7-1-2") == "VPS7(1.2)"
    assert house_name(None, "web-1") == "web-1"  # a foreign VM keeps its PVE name
    assert parse_vm({"vmid": 101, "status": "stopped", "name": "web-1"}, {}, "n").order is None


def test_with_meta_keeps_other_text() -> None:
    text = with_meta("ipsinfra-name: VPS7(1.2)\nipsinfra-ips: 10.0.0.1\nrack B", "VPS7(3.4)")
    assert text == "ipsinfra-name: VPS7(3.4)\nipsinfra-ips: 10.0.0.1\nrack B"
    assert with_meta("", "VPS7(3.4)", []) == "ipsinfra-name: VPS7(3.4)"


def test_small_parsers() -> None:
    nic = parse_nic("e1000=AA:BB:CC:DD:EE:FF,bridge=vmbr1,tag=10")
    assert nic is not None and (nic.model, nic.mac, nic.bridge) == ("e1000", "aa:bb:cc:dd:ee:ff", "vmbr1")
    nic = parse_nic("model=virtio,macaddr=52:54:00:12:34:56")
    assert nic is not None and nic.mac == "52:54:00:12:34:56"
    assert parse_nic("bridge=vmbr0") is None
    assert parse_vnc("-cpu host -vnc [::1]:7,password=on") == (ipaddress.ip_address("::1"), 5907)
    assert parse_vnc("-cpu host") == (None, None)
    assert parse_disk("scsi1", "ceph:vm-1-disk-0,size=512M") == Disk(name="scsi1", size_gib=1, storage="ceph")
    assert parse_disk("scsi2", "local:vm-1-disk-2.qcow2,size=2T").size_gib == 2048  # type: ignore[union-attr]
    assert parse_disk("ide2", "local-lvm:vm-1-cloudinit,media=cdrom") is None


def test_split_pending_current_and_next_start() -> None:
    from ipsinfra.hypervisors.proxmox import split_pending

    # GET /nodes/pve1/qemu/100/pending while args and cores wait for a cold start.
    items: list[dict[str, Any]] = [
        {"key": "args", "value": "-vnc 127.0.0.21:100", "pending": "-vnc 127.0.0.22:100"},
        {"key": "cores", "value": "2", "pending": "3"},
        {"key": "affinity", "value": "0-1", "delete": 1},
        {"key": "onboot", "value": "1"},
        {"key": "tags", "pending": "new"},
    ]
    current, configured = split_pending(items)
    assert current == {"args": "-vnc 127.0.0.21:100", "cores": "2", "affinity": "0-1", "onboot": "1"}
    assert configured == {"args": "-vnc 127.0.0.22:100", "cores": "3", "onboot": "1", "tags": "new"}
    assert str(parse_vnc(configured["args"])[0]) == "127.0.0.22"
