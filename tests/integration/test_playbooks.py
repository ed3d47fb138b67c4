"""ipsinfra.playbooks: real ansible_runner.run() calls on localhost and on SSH test hosts."""

from __future__ import annotations

import logging
import secrets
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipsinfra import playbooks
from ipsinfra.errors import OperationTimeout, PlaybookError
from ipsinfra.lab.sshd import SshHost, SshHostPool

LOCALHOST: dict[str, Any] = {
    "all": {
        "hosts": {
            "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        }
    }
}


@pytest.fixture
def password() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture
def pool() -> Iterator[SshHostPool]:
    with SshHostPool() as running:
        yield running


@pytest.fixture
def two_hosts(pool: SshHostPool) -> list[SshHost]:
    return pool.start(["alpha", "beta"])


def _files_containing(root: Path, needle: str) -> list[Path]:
    data = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and data in p.read_bytes()]


def _processes_running(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


def test_ping_on_localhost_gives_per_host_results(password: str) -> None:
    sigint_before = signal.getsignal(signal.SIGINT)

    result = playbooks.run("ping", LOCALHOST, extravars={"secret_password": password})

    # ansible-runner would install its own SIGINT handler for good; ours is restored.
    assert signal.getsignal(signal.SIGINT) is sigint_before

    assert result.ok, result
    assert result.status == "successful"
    assert result.rc == 0
    assert list(result.hosts) == ["localhost"]
    localhost = result.hosts["localhost"]
    assert localhost.succeeded
    assert localhost.ok == 7  # every task of ping.yml, the always: removal included
    assert localhost.changed == 3  # tempfile, copy, file absent
    assert localhost.failed == localhost.unreachable == 0
    assert result.data["ping_hostnames"] == {"localhost": socket.gethostname()}
    assert result.duration_s > 0
    assert result.run_dir is not None
    assert not result.run_dir.exists()
    assert result.raise_on_error() is result


def test_a_missing_secret_fails_the_host_and_raise_on_error_names_it() -> None:
    result = playbooks.run("ping", LOCALHOST, extravars={"secret_password": "short"})

    assert not result.ok
    assert result.hosts["localhost"].failed == 1
    with pytest.raises(PlaybookError, match=r"failed on localhost \(failed=1\)"):
        result.raise_on_error()


@pytest.mark.ssh
def test_ping_on_two_ssh_hosts_reaches_two_separate_namespaces(
    two_hosts: list[SshHost], pool: SshHostPool, password: str
) -> None:
    result = playbooks.run("ping", pool.ansible_inventory(), extravars={"secret_password": password})

    assert result.ok, result
    assert set(result.hosts) == {"alpha", "beta"}
    for host in result.hosts.values():
        assert host.succeeded
        assert host.ok == 7
    # `hostname` ran on each host and answered with that host's own UTS namespace.
    assert result.data["ping_hostnames"] == {"alpha": "alpha", "beta": "beta"}


@pytest.mark.ssh
def test_the_secret_is_nowhere_after_the_run(
    two_hosts: list[SshHost],
    pool: SshHostPool,
    password: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    runs = tmp_path / "runs"
    kept = tmp_path / "artifacts"

    result = playbooks.run(
        "ping",
        pool.ansible_inventory(),
        extravars={"secret_password": password},
        diff=True,
        keep_artifacts=kept,
        private_data_root=runs,
    )

    assert result.ok, result  # the assert task saw the secret, so it did reach the play
    assert result.run_dir is not None
    assert result.run_dir.parent == runs
    assert not result.run_dir.exists()
    assert list(runs.iterdir()) == []
    kept_files = [p.relative_to(kept) for p in kept.rglob("*") if p.is_file()]
    assert any(p.name == "stdout" for p in kept_files)
    assert not any("env" in p.parts for p in kept_files)
    assert _files_containing(kept, password) == []
    assert _files_containing(pool.base_dir, password) == []  # the hosts' homes (remote tmp)
    assert password not in result.model_dump_json()
    assert password not in repr(result)
    assert password not in caplog.text
    captured = capsys.readouterr()
    assert password not in captured.out
    assert password not in captured.err


@pytest.mark.ssh
def test_check_mode_with_diff_and_limit(
    two_hosts: list[SshHost], pool: SshHostPool, password: str, tmp_path: Path
) -> None:
    kept = tmp_path / "artifacts"

    result = playbooks.run(
        "ping",
        pool.ansible_inventory(),
        limit="beta",
        check=True,
        diff=True,
        extravars={"secret_password": password},
        keep_artifacts=kept,
    )

    assert result.ok, result
    assert list(result.hosts) == ["beta"]
    (command,) = kept.rglob("command")
    argv = command.read_text()
    assert "--check" in argv
    assert "--diff" in argv
    assert "--limit" in argv
    assert password not in argv


@pytest.mark.ssh
def test_an_unreachable_host_does_not_hide_the_reachable_one(pool: SshHostPool, password: str) -> None:
    (alive,) = pool.start(["alive"])
    inventory = pool.ansible_inventory()
    dead_vars = {**alive.ansible_host_vars(), "ansible_port": _closed_port()}
    inventory["all"]["children"]["lab"]["hosts"]["dead"] = dead_vars

    result = playbooks.run("ping", inventory, extravars={"secret_password": password})

    assert not result.ok
    assert result.status == "failed"
    assert result.rc == 4
    assert set(result.hosts) == {"alive", "dead"}
    assert result.hosts["alive"].succeeded
    assert result.hosts["alive"].ok == 7
    assert result.hosts["dead"].unreachable == 1
    assert result.hosts["dead"].ok == 0
    assert result.failed_hosts == ["dead"]
    with pytest.raises(PlaybookError, match=r"dead \(unreachable=1\)"):
        result.raise_on_error()


def test_a_timeout_raises_and_cleans_up(tmp_path: Path, password: str) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "slow.yml").write_text(
        "- name: Take too long\n"
        "  hosts: all\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Sleep\n"
        "      ansible.builtin.command: sleep 61.25\n"
    )
    runs = tmp_path / "runs"

    started = time.monotonic()
    with pytest.raises(OperationTimeout, match="within 2 s") as excinfo:
        playbooks.run(
            "slow",
            LOCALHOST,
            playbook_dir=books,
            timeout=2,
            extravars={"secret_password": password},
            private_data_root=runs,
        )

    assert time.monotonic() - started < 20
    assert isinstance(excinfo.value, TimeoutError)
    assert list(runs.iterdir()) == []
    # ansible's workers setsid(), so runner's kill of the process group misses them: not here.
    assert _processes_running("sleep 61.25") == []


def test_a_broken_playbook_raises_playbook_error_without_the_secret(tmp_path: Path, password: str) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "broken.yml").write_text(
        "- name: Broken\n  hosts: all\n  tasks:\n    - name: Bad\n      no.such.module: {}\n"
    )
    runs = tmp_path / "runs"

    with pytest.raises(PlaybookError, match="no stats") as excinfo:
        playbooks.run(
            "broken",
            LOCALHOST,
            playbook_dir=books,
            extravars={"secret_password": password},
            private_data_root=runs,
        )

    assert "no.such.module" in str(excinfo.value)  # the message shows ansible's complaint
    assert password not in str(excinfo.value)
    assert list(runs.iterdir()) == []


def test_an_inventory_file_path_works(tmp_path: Path, password: str) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")

    result = playbooks.run("ping.yml", inventory, extravars={"secret_password": password})

    assert result.ok, result
    assert list(result.hosts) == ["localhost"]
