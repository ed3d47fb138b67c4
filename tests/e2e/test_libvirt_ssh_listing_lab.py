"""libvirt_listing="ssh" on the lab: one real SSH exec lists what libvirt's RPCs list."""

from __future__ import annotations

import collections

import pytest

from ipsinfra.hypervisors import nodeshell
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.lab.fleet import Lab
from ipsinfra.models import VdsState
from tests.integration.test_libvirt_bulk import Counting

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]


@pytest.mark.parametrize("node_name", ["kvm1", "kvm2"])
def test_one_ssh_exec_lists_what_the_rpc_path_lists(lab: Lab, node_name: str) -> None:
    assert lab.fleet is not None
    node = lab.fleet.nodes[node_name]
    assert node.ssh_host, "the lab gives every libvirt node an SSH side"
    over_rpc = lab.driver(node_name).list_vds()
    assert over_rpc and any(v.state is VdsState.RUNNING for v in over_rpc)
    # virsh on the node's SSH side reaches the same daemon through its socket.
    ssh_node = node.model_copy(update={"libvirt_listing": "ssh", "libvirt_local_uri": node.uri})
    plain = LibvirtDriver(ssh_node)
    counts: collections.Counter[str] = collections.Counter()
    try:
        counted = LibvirtDriver(ssh_node, conn=Counting(plain.ex_conn, counts, "conn"))
        over_ssh = counted.list_vds()
    finally:
        plain.close()
    assert over_ssh == over_rpc
    assert sum(counts.values()) == 0, counts  # not one libvirt RPC: the whole listing came over SSH
    # Both on-node paths: libvirt-python (the lab's nodes have python3-libvirt) and plain virsh.
    for python, via in ((True, "python"), (False, "virsh")):
        listing = nodeshell.list_domains(ssh_node, python=python)
        assert listing.via == via
        assert sorted(d.name or "" for d in listing.domains) == sorted(v.name for v in over_rpc)
        assert all(d.xml and d.state is not None for d in listing.domains)
