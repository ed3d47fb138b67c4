"""libvirt_listing=auto on a REAL qemu+ssh:// connection: the listing rides libvirt's own SSH.

A session libvirtd (real, qemu driver) and an sshd test host whose root reaches
the daemon's socket: libvirt connects through ``ssh ... nc -U <socket>`` as it
does to any remote node, and the auto listing runs virsh on the far side of the
very same ssh (user, host, port, keyfile and ``command=`` read off the URI).
"""

from __future__ import annotations

import collections
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra.errors import HypervisorApiError
from ipsinfra.hypervisors import nodeshell
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.lab.libvirtd import LibvirtDaemon
from ipsinfra.lab.sshd import SshHost, SshHostPool, pinned_ssh_command
from ipsinfra.models import Node
from tests.conftest import require_binary
from tests.contract.base import spec_for
from tests.contract.test_libvirt_daemon import LAB_PARENT, lab_node, wipe
from tests.integration.test_libvirt_bulk import Counting

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]


class Remote:
    def __init__(self, daemon: LibvirtDaemon, host: SshHost, base: Path) -> None:
        self.daemon, self.host = daemon, host
        self.ssh = pinned_ssh_command(base / "ssh-to-node", host.known_hosts)  # the URI's command=
        self.local = lab_node(daemon, "10.0.34.56")  # qemu+unix: the same daemon, no SSH

    def node(self, **kw: object) -> Node:
        uri = (
            f"qemu+ssh://{self.host.user}@{self.host.host}:{self.host.port}/session"
            f"?socket={self.daemon.socket_path}&keyfile={self.host.key_file}&command={self.ssh}"
        )
        return self.local.model_copy(update={"uri": uri, **kw})


@pytest.fixture(scope="module")
def remote() -> Iterator[Remote]:
    require_binary("nc", "libvirt's qemu+ssh transport needs it on the node: netcat-openbsd; scripts/dev")
    base = Path(tempfile.mkdtemp(prefix="ipsinfra-qssh-", dir=LAB_PARENT))
    base.chmod(0o755)
    try:
        with LibvirtDaemon("qssh1", base, index=41) as daemon, SshHostPool() as pool:
            [host] = pool.start(1)
            setup = Remote(daemon, host, base)
            drv = LibvirtDriver(setup.local, nic_backend="user")
            wipe(drv.ex_conn)
            for order, autostart in ((4101, True), (4102, False), (4103, True)):
                drv.define(spec_for(drv, order, autostart=autostart))
            drv.close()
            yield setup
    finally:
        shutil.rmtree(base, ignore_errors=True)


def counted(node: Node) -> tuple[LibvirtDriver, LibvirtDriver, collections.Counter[str]]:
    plain = LibvirtDriver(node)  # a real libvirt connection over the URI's ssh
    counts: collections.Counter[str] = collections.Counter()
    return plain, LibvirtDriver(node, conn=Counting(plain.ex_conn, counts, "conn")), counts


def test_auto_lists_a_qemu_ssh_node_in_one_exec(remote: Remote) -> None:
    node = remote.node()
    assert node.libvirt_listing == "auto"
    over_unix = LibvirtDriver(remote.local).list_vds()
    assert len(over_unix) == 3
    plain, driver, counts = counted(node)
    try:
        assert driver.list_vds() == over_unix
    finally:
        plain.close()
    assert sum(counts.values()) == 0, counts  # no libvirt RPC: the listing came over ssh
    via = nodeshell.libvirt_ssh(node)
    assert via is not None and via[1].startswith("qemu+unix:///session?socket=")


def test_auto_falls_back_to_rpc_when_the_listing_cannot_run(
    remote: Remote, caplog: pytest.LogCaptureFixture
) -> None:
    # virsh on the node is pointed at a socket that is not there: the script fails.
    node = remote.node(libvirt_local_uri="qemu+unix:///session?socket=/nonexistent/sock")
    plain, driver, counts = counted(node)
    try:
        with caplog.at_level(logging.WARNING, logger="ipsinfra.hypervisors.libvirt"):
            first = driver.list_vds()
            second = driver.list_vds()
    finally:
        plain.close()
    assert first == second == LibvirtDriver(remote.local).list_vds()
    assert counts["dom.XMLDesc"] == 6  # over libvirt's RPCs, both times
    warnings = [r.getMessage() for r in caplog.records if "listing over SSH failed" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(node.name)  # tried once, then rpc


def test_explicit_ssh_mode_raises_instead(remote: Remote) -> None:
    node = remote.node(
        libvirt_listing="ssh",
        libvirt_local_uri="qemu+unix:///session?socket=/nonexistent/sock",
        ssh_host=remote.host.host,
        ssh_port=remote.host.port,
        ssh_user=remote.host.user,
        ssh_key_file=str(remote.host.key_file),
        ssh_known_hosts=str(remote.host.known_hosts),
    )
    plain = LibvirtDriver(node)
    try:
        with pytest.raises(HypervisorApiError) as err:
            plain.list_vds()
    finally:
        plain.close()
    assert node.name in str(err.value) and "list domains" in str(err.value)
