"""The reboot check's boot reader on the lab: a libvirt node's SSH side, over nodeshell."""

from __future__ import annotations

import pytest

from ipsinfra.audit.run import default_boot_reader, read_boot_over_ssh
from ipsinfra.hypervisors import nodeshell
from ipsinfra.lab.fleet import Lab
from tests.integration.test_boot_over_ssh import master, master_pid

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]


@pytest.mark.usefixtures("private_control_path")
def test_boot_reader_and_ssh_listing_share_one_master_and_a_reboot_is_seen(lab: Lab) -> None:
    assert lab.fleet is not None
    node = lab.fleet.nodes["kvm1"]
    assert node.ssh_host, "the lab gives every libvirt node an SSH side"
    ssh_node = node.model_copy(update={"libvirt_listing": "ssh", "libvirt_local_uri": node.uri})
    try:
        before = default_boot_reader(node, lab.driver("kvm1"))  # the SSH path: ssh_host is set
        assert before is not None
        assert before.boot_id == lab.ssh_hosts["kvm1"].boot_id_file.read_text().strip()
        pid = master_pid(node)
        assert pid is not None, "the boot reader left no ControlMaster for the node"
        listing = nodeshell.list_domains(ssh_node)
        assert listing.domains
        assert master_pid(ssh_node) == pid  # the listing rode the boot reader's master

        lab.reboot("kvm1")
        after = read_boot_over_ssh(node)
        assert after.boot_id == lab.ssh_hosts["kvm1"].boot_id_file.read_text().strip()
        assert after.differs(before) is True
    finally:
        master(node, "exit")
