"""playbooks.run never turns SSH host-key checking off by itself (issue 18, part 4).

Before: unless the inventory's text mentioned "known_hosts", ``run`` set
``ANSIBLE_HOST_KEY_CHECKING=False``, so ssh logged into whatever answered and
wrote its key into root's ``~/.ssh/known_hosts``. Now a host whose key is not
pinned is unreachable, :meth:`PlaybookResult.raise_on_error` raises
:class:`PlaybookHostKeyError`, and no known_hosts file gains a line.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra import hostkeys, playbooks
from ipsinfra.hostkeys import HostKeyError
from ipsinfra.lab.sshd import SshHostPool
from ipsinfra.playbooks import PlaybookHostKeyError


@pytest.fixture
def pool() -> Iterator[SshHostPool]:
    with SshHostPool() as running:
        yield running


def _lines_for(path: Path, name: str) -> list[str]:
    if not path.is_file():
        return []
    return [line for line in path.read_text(errors="replace").splitlines() if line.startswith(name + " ")]


@pytest.mark.ssh
def test_an_unpinned_host_fails_with_a_host_key_error(pool: SshHostPool, tmp_path: Path) -> None:
    pool.start(["stranger"])
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inventory = pool.ansible_inventory()
    host_vars = inventory["all"]["children"]["lab"]["hosts"]["stranger"]
    host_vars["ansible_ssh_common_args"] = host_vars["ansible_ssh_common_args"].replace(
        str(pool.known_hosts), str(empty)
    )

    result = playbooks.run(
        "ping", inventory, extravars={"secret_password": secrets.token_urlsafe(16)}, timeout=120
    )

    assert result.hosts["stranger"].unreachable == 1 and result.hosts["stranger"].ok == 0
    assert "stranger" in result.host_key_failures
    with pytest.raises(PlaybookHostKeyError, match=r"stranger \(key not pinned") as caught:
        result.raise_on_error()
    assert isinstance(caught.value, HostKeyError)
    assert empty.read_text() == ""  # ssh added nothing


@pytest.mark.ssh
def test_a_changed_key_names_the_offered_fingerprint(pool: SshHostPool, tmp_path: Path) -> None:
    (host,) = pool.start(["spoofed"])
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key_type, blob = other.with_suffix(".pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[{host.host}]:{host.port} {key_type} {blob}\n")
    inventory = pool.ansible_inventory()
    host_vars = inventory["all"]["children"]["lab"]["hosts"]["spoofed"]
    host_vars["ansible_ssh_common_args"] = host_vars["ansible_ssh_common_args"].replace(
        str(pool.known_hosts), str(wrong)
    )
    real = hostkeys.lookup(pool.known_hosts, host.host, host.port)[0]

    result = playbooks.run(
        "ping", inventory, extravars={"secret_password": secrets.token_urlsafe(16)}, timeout=120
    )

    with pytest.raises(PlaybookHostKeyError) as caught:
        result.raise_on_error()
    assert "key CHANGED" in str(caught.value) and real.fingerprint in str(caught.value)


@pytest.mark.ssh
def test_an_inventory_naming_no_known_hosts_is_checked_against_the_users_file(
    pool: SshHostPool, tmp_path: Path
) -> None:
    """The old trap: no "known_hosts" in the inventory text turned checking off."""
    (host,) = pool.start(["naive"])
    user_known_hosts = Path("~/.ssh/known_hosts").expanduser()  # ssh's own (the passwd home's)
    name = f"[{host.host}]:{host.port}"
    before = _lines_for(user_known_hosts, name)
    inventory = {
        "all": {
            "hosts": {
                "naive": {
                    "ansible_connection": "ssh",
                    "ansible_host": host.host,
                    "ansible_port": host.port,
                    "ansible_user": host.user,
                    "ansible_ssh_private_key_file": str(host.key_file),
                    "ansible_ssh_common_args": "-o IdentitiesOnly=yes",
                    "ansible_python_interpreter": "/usr/bin/python3",
                }
            }
        }
    }

    result = playbooks.run(
        "ping", inventory, extravars={"secret_password": secrets.token_urlsafe(16)}, timeout=120
    )

    assert result.hosts["naive"].unreachable == 1
    assert "naive" in result.host_key_failures
    assert _lines_for(user_known_hosts, name) == before  # no unchecked key written for the user


@pytest.mark.ssh
def test_the_pinned_lab_host_runs_with_checking_on(pool: SshHostPool, tmp_path: Path) -> None:
    pool.start(["pinned"])

    result = playbooks.run(
        "ping",
        pool.ansible_inventory(),
        extravars={"secret_password": secrets.token_urlsafe(16)},
        timeout=120,
    )

    assert result.ok, result
    assert result.host_key_failures == {}
    assert result.data["ping_hostnames"] == {"pinned": "pinned"}
