"""libvirt_listing=auto: the SSH a qemu+ssh:// URI goes over, read off the URI as libvirt reads it."""

from __future__ import annotations

import ipaddress

import pytest

from ipsinfra.hypervisors import nodeshell
from ipsinfra.hypervisors.nodeshell import SshTarget
from ipsinfra.models import HypervisorKind, Node


def node(uri: str, **kw: object) -> Node:
    return Node.model_validate(
        {
            "name": "kvm1",
            "site": "msk1",
            "main_ip": ipaddress.ip_address("10.0.34.56"),
            "kind": HypervisorKind.LIBVIRT,
            "uri": uri,
            "cpus": 8,
            **kw,
        }
    )


@pytest.mark.parametrize(
    ("uri", "target", "local"),
    [
        (
            "qemu+ssh://root@kvm1.example/system",
            SshTarget("kvm1", "kvm1.example", user="root"),
            "qemu:///system",
        ),
        (
            "qemu+ssh://ops@10.0.34.56:2222/system?keyfile=/etc/ipsinfra/id_ed25519&command=/usr/local/bin/ssh",
            SshTarget(
                "kvm1",
                "10.0.34.56",
                port=2222,
                user="ops",
                key_file="/etc/ipsinfra/id_ed25519",
                command="/usr/local/bin/ssh",
            ),
            "qemu:///system",
        ),
        # libvirt's ssh binary transport ignores known_hosts (ssh reads its own); libssh reads it.
        (
            "qemu+ssh://root@kvm1/system?known_hosts=/kh",
            SshTarget("kvm1", "kvm1", user="root"),
            "qemu:///system",
        ),
        (
            "qemu+libssh://root@kvm1/system?known_hosts=/kh",
            SshTarget("kvm1", "kvm1", user="root", known_hosts="/kh"),
            "qemu:///system",
        ),
        # No user, no port: ssh's own defaults (~/.ssh/config), as libvirt leaves them.
        ("qemu+ssh://kvm1/session", SshTarget("kvm1", "kvm1"), "qemu:///session"),
        (
            "qemu+libssh2://root@[2001:db8::7]/system",
            SshTarget("kvm1", "2001:db8::7", user="root"),
            "qemu:///system",
        ),
        # The remote name libvirt is told to use, and a socket of its own.
        (
            "qemu+ssh://root@kvm1/system?name=qemu:///embed",
            SshTarget("kvm1", "kvm1", user="root"),
            "qemu:///embed",
        ),
        (
            "qemu+ssh://root@kvm1/session?socket=/run/user/0/libvirt/virtqemud-sock",
            SshTarget("kvm1", "kvm1", user="root"),
            "qemu+unix:///session?socket=/run/user/0/libvirt/virtqemud-sock",
        ),
    ],
)
def test_ssh_uris_give_the_same_ssh_and_the_on_node_uri(uri: str, target: SshTarget, local: str) -> None:
    assert nodeshell.libvirt_ssh(node(uri)) == (target, local)


@pytest.mark.parametrize(
    "uri",
    [
        "qemu:///system",
        "qemu+unix:///session?socket=/tmp/x",
        "qemu+tls://kvm1.example/system",
        "qemu+tcp://kvm1.example/system",
        "test:///default",
        "qemu+ssh://root@kvm1/system?no_verify=1",  # ipsinfra's own ssh never skips the host key
        "qemu+libssh://root@kvm1/system?known_hosts_verify=ignore",
        "qemu+ssh://root@kvm1:notaport/system",
        "qemu+ssh:///system",
        "qemu+ssh://root@kvm1/system?name=qemu:///system';reboot;'",  # nothing unsafe reaches the shell
    ],
)
def test_other_transports_and_unsafe_uris_stay_on_rpc(uri: str) -> None:
    assert nodeshell.libvirt_ssh(node(uri)) is None


def test_an_explicit_local_uri_wins() -> None:
    got = nodeshell.libvirt_ssh(node("qemu+ssh://root@kvm1/system", libvirt_local_uri="qemu:///session"))
    assert got is not None and got[1] == "qemu:///session"


def test_argv_leaves_unset_values_to_ssh() -> None:
    argv = nodeshell.ssh_argv(SshTarget("kvm1", "kvm1.example"), timeout=5)
    assert argv[-2:] == ["--", "kvm1.example"]
    assert "-p" not in argv and "-l" not in argv and "-i" not in argv
    full = nodeshell.ssh_argv(
        SshTarget("kvm1", "h", port=2222, user="ops", key_file="/k", known_hosts="/kh"), timeout=5
    )
    for pair in (["-p", "2222"], ["-l", "ops"], ["-i", "/k"]):
        assert any(full[i : i + 2] == pair for i in range(len(full)))
    assert "StrictHostKeyChecking=yes" in full and "UserKnownHostsFile=/kh" in full
    assert "BatchMode=yes" in full  # never a password prompt
