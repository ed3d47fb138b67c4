"""ipsinfra.playbooks: real ansible_runner.run() calls on localhost and on SSH test hosts."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipsinfra import playbooks
from ipsinfra.errors import OperationTimeout, PlaybookError
from ipsinfra.lab.sshd import SshHost, SshHostPool
from tests.conftest import require

MITOGEN_MISSING = "the mitogen extra is not installed (pip install -e '.[mitogen]')"

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


def test_raise_on_error_carries_the_failing_msg_without_the_secret(tmp_path: Path, password: str) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "fails.yml").write_text(
        "- name: Fail with a reason\n"
        "  hosts: all\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Tolerated failure\n"
        "      ansible.builtin.fail:\n"
        "        msg: not this one\n"
        "      ignore_errors: true\n"
        "    - name: Refuse the target\n"
        "      ansible.builtin.fail:\n"
        "        msg: 'VPS1003(113.20): no node reports it (db_password={{ db_password }})'\n"
    )

    result = playbooks.run("fails", LOCALHOST, playbook_dir=books, extravars={"db_password": password})

    assert not result.ok
    assert result.failures["localhost"].startswith("Refuse the target: VPS1003(113.20): no node reports it")
    with pytest.raises(PlaybookError) as excinfo:
        result.raise_on_error()
    message = str(excinfo.value)
    assert "failed on localhost (failed=1): Refuse the target: VPS1003(113.20): no node reports it" in message
    assert "not this one" not in message  # ignore_errors: not the reason
    assert password not in message and password not in result.model_dump_json()


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


@pytest.mark.ssh
def test_the_shipped_settings_keep_one_ssh_master_per_host(
    two_hosts: list[SshHost], pool: SshHostPool, password: str
) -> None:
    control_dir = Path(tempfile.mkdtemp(prefix="ipst-cp-", dir="/tmp"))  # short: socket paths
    try:
        result = playbooks.run(
            "ping",
            pool.ansible_inventory(),
            extravars={"secret_password": password},
            envvars={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir)},
            mitogen=False,  # Mitogen keeps its own connection per host instead
        )

        assert result.ok, result
        # ControlPersist (src/ipsinfra/data/ansible.cfg): each host's master outlives the run.
        sockets = [p for p in control_dir.iterdir() if p.is_socket()]
        assert len(sockets) == 2
    finally:
        for sock in control_dir.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True)
        shutil.rmtree(control_dir, ignore_errors=True)


@pytest.mark.ssh
def test_mitogen_runs_the_ping_playbook_and_leaves_no_secret(
    two_hosts: list[SshHost], pool: SshHostPool, password: str, tmp_path: Path
) -> None:
    require(
        playbooks.mitogen_strategy_dir() is not None,
        "the mitogen extra is not installed (pip install -e '.[mitogen]')",
    )
    kept = tmp_path / "artifacts"

    result = playbooks.run(
        "ping",
        pool.ansible_inventory(),
        extravars={"secret_password": password},
        mitogen=True,
        keep_artifacts=kept,
    )

    assert result.ok, result
    assert result.data["ping_hostnames"] == {"alpha": "alpha", "beta": "beta"}
    assert all(host.ok == 7 and host.changed == 3 for host in result.hosts.values())
    (command,) = kept.rglob("command")
    assert '"ANSIBLE_STRATEGY": "mitogen_linear"' in command.read_text()
    assert _files_containing(kept, password) == []
    assert _files_containing(pool.base_dir, password) == []


@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGTERM, PlaybookError), (signal.SIGINT, KeyboardInterrupt)]
)
def test_a_signal_ends_the_run_at_once_and_leaves_nothing(
    tmp_path: Path, password: str, signum: signal.Signals, raised: type[BaseException]
) -> None:
    books = tmp_path / "books"
    books.mkdir()
    (books / "slow.yml").write_text(
        "- name: Take long\n"
        "  hosts: all\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Sleep\n"
        f"      ansible.builtin.command: sleep 61.{signum.value}\n"
    )
    runs = tmp_path / "runs"
    sleeper = f"sleep 61.{signum.value}"
    done = threading.Event()

    def signal_once_the_task_runs() -> None:
        # Only then is the run's handler in place: earlier, SIGTERM would end pytest itself.
        while not done.wait(0.05):
            if _processes_running(sleeper):
                os.kill(os.getpid(), signum)
                return

    sigint_before = signal.getsignal(signal.SIGINT)
    watcher = threading.Thread(target=signal_once_the_task_runs, daemon=True)
    started = time.monotonic()
    watcher.start()
    try:
        with pytest.raises(raised):
            playbooks.run(
                "slow",
                LOCALHOST,
                playbook_dir=books,
                extravars={"secret_password": password},
                private_data_root=runs,
            )
    finally:
        done.set()
        watcher.join()

    assert time.monotonic() - started < 20
    assert signal.getsignal(signal.SIGINT) is sigint_before
    assert list(runs.iterdir()) == []
    assert _processes_running(sleeper) == []


def test_a_signal_before_ansible_playbook_starts_keeps_it_from_starting(tmp_path: Path) -> None:
    pdd = tmp_path / "run"
    pdd.mkdir()

    runner = playbooks._run_ansible_runner(
        [],
        None,
        lambda: True,  # the signal has come already
        private_data_dir=str(pdd),
        project_dir=str(playbooks.default_playbook_dir()),
        playbook="ping.yml",
        inventory=LOCALHOST,
        quiet=True,
    )

    assert runner.rc is None
    assert runner.status == "unstarted"
    assert list(pdd.glob("artifacts/*/stdout")) == []  # ansible-playbook never ran


@pytest.mark.ssh
@pytest.mark.parametrize("mitogen", [False, True], ids=["ssh", "mitogen"])
def test_a_host_whose_key_does_not_match_the_pinned_one_is_unreachable(
    pool: SshHostPool, password: str, tmp_path: Path, mitogen: bool
) -> None:
    if mitogen:
        require(
            playbooks.mitogen_strategy_dir() is not None,
            "the mitogen extra is not installed (pip install -e '.[mitogen]')",
        )
    (host,) = pool.start(["spoofed"])
    wrong_key = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    key_type, key = wrong_key.with_suffix(".pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{host.host}]:{host.port} {key_type} {key}\n")
    inventory = pool.ansible_inventory()
    host_vars = inventory["all"]["children"]["lab"]["hosts"]["spoofed"]
    host_vars["ansible_ssh_common_args"] = host_vars["ansible_ssh_common_args"].replace(
        str(pool.known_hosts), str(known_hosts)
    )

    # ansible-runner turns host key checking off unless told; the run must keep it on.
    result = playbooks.run("ping", inventory, extravars={"secret_password": password}, mitogen=mitogen)

    assert result.hosts["spoofed"].unreachable == 1
    assert result.hosts["spoofed"].ok == 0
