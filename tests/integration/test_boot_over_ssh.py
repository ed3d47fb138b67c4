"""read_boot_over_ssh against real sshd test hosts: one nodeshell exec, the shared master.

Each host of :class:`~ipsinfra.lab.sshd.SshHostPool` has its own boot id file
bind-mounted over ``/proc/sys/kernel/random/boot_id``; writing it is a reboot
as far as the boot reader can tell. The lab test in ``tests/e2e`` does the same
on a libvirt node's SSH side.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra.audit.run import read_boot_over_ssh
from ipsinfra.errors import IpsinfraError, NodeUnreachable
from ipsinfra.hypervisors import nodeshell
from ipsinfra.lab.sshd import SshHost, SshHostPool
from ipsinfra.models import HypervisorKind, Node

pytestmark = [pytest.mark.ssh, pytest.mark.root]


def node_on(host: SshHost, **update: object) -> Node:
    """A libvirt node whose SSH side is ``host``, as the lab's inventory writes it."""
    node = Node(
        name="kvm7",
        site="lab",
        main_ip=ipaddress.ip_address("127.0.0.1"),
        kind=HypervisorKind.LIBVIRT,
        uri="test:///default",
        cpus=1,
        ssh_host=host.host,
        ssh_port=host.port,
        ssh_user=host.user,
        ssh_key_file=str(host.key_file),
        ssh_known_hosts=str(host.known_hosts),
    )
    return node.model_copy(update=update)


def master(node: Node, op: str) -> subprocess.CompletedProcess[str]:
    """``ssh -O <op>`` on the master the listing (``nodeshell.list_domains``) would use."""
    argv = nodeshell.ssh_argv(node, timeout=60.0)
    cut = argv.index("--")
    return subprocess.run(
        [*argv[:cut], "-O", op, *argv[cut:]], capture_output=True, text=True, timeout=10, check=False
    )


def master_pid(node: Node) -> int | None:
    found = re.search(r"pid=(\d+)", master(node, "check").stderr)
    return int(found.group(1)) if found else None


def local_btime() -> dt.datetime:
    line = next(x for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime "))
    return dt.datetime.fromtimestamp(int(line.split()[1]), dt.UTC)


@pytest.fixture
def host() -> Iterator[SshHost]:
    with SshHostPool() as pool:
        (one,) = pool.start(["kvm7"])
        try:
            yield one
        finally:
            master(node_on(one), "exit")


def test_boot_identity_comes_over_one_nodeshell_exec_and_a_new_boot_id_is_seen(
    host: SshHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_run_script = nodeshell.run_script

    def counting(node: Node, script: str, *, what: str, timeout: float = 60.0) -> str:
        calls.append(what)
        return real_run_script(node, script, what=what, timeout=timeout)

    monkeypatch.setattr(nodeshell, "run_script", counting)
    node = node_on(host)

    before = read_boot_over_ssh(node)
    assert before.boot_id == host.boot_id_file.read_text().strip()
    assert before.boot_id != Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert before.boot_time == local_btime()  # the host shares this machine's /proc/stat

    new_id = str(uuid.uuid4())
    with open(host.boot_id_file, "r+", encoding="ascii") as fh:  # in place: it is bind-mounted
        fh.write(new_id + "\n")
    after = read_boot_over_ssh(node)
    assert after.boot_id == new_id
    assert after.differs(before) is True
    assert calls == ["read boot identity", "read boot identity"]


@pytest.mark.usefixtures("private_control_path")
def test_the_boot_reader_leaves_a_master_the_listing_reuses(host: SshHost) -> None:
    node = node_on(host)
    assert master_pid(node) is None

    read_boot_over_ssh(node, timeout=15.0)
    pid = master_pid(node)
    assert pid is not None, "read_boot_over_ssh left no ControlMaster for the node"
    listing_node = node_on(host, libvirt_listing="ssh")
    # The listing's argv (its own timeout, same host/port/user) finds the same master.
    assert master_pid(listing_node) == pid
    nodeshell.run_script(listing_node, "true\n", what="list domains")
    read_boot_over_ssh(node)
    assert master_pid(node) == pid


def test_unexpected_output_is_an_error_naming_the_node(host: SshHost) -> None:
    real = host.boot_id_file.read_text()
    host.boot_id_file.write_text("not a boot id\n")  # truncates the same (bind-mounted) inode
    try:
        with pytest.raises(IpsinfraError, match=r"node kvm7: unexpected boot identity output over SSH"):
            read_boot_over_ssh(node_on(host))
    finally:
        host.boot_id_file.write_text(real)


def test_a_refused_key_names_the_node_and_never_the_key(host: SshHost, tmp_path: Path) -> None:
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with pytest.raises(NodeUnreachable) as err:
        read_boot_over_ssh(node_on(host, ssh_key_file=str(key)))
    message = str(err.value)
    assert message.startswith("kvm7: read boot identity: SSH failed:")
    assert "Permission denied" in message
    secret = key.read_text()
    assert secret.splitlines()[1] not in message


def test_a_host_key_not_pinned_is_refused(host: SshHost, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(NodeUnreachable, match=r"^kvm7: read boot identity: SSH failed: Host key"):
        read_boot_over_ssh(node_on(host, ssh_known_hosts=str(empty)))
