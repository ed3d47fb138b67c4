"""ipsinfra.lab.sshd: real Debian sshd test hosts in their own namespaces."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from ipsinfra.lab import sshd
from ipsinfra.lab.sshd import LabNeedsRoot, SshHost, SshHostPool
from tests.conftest import require_module

pytestmark = [pytest.mark.ssh, pytest.mark.root]


def _ssh(host: SshHost, command: str) -> str:
    done = subprocess.run(host.ssh_argv(command), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _pid_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/pid")


def _processes_in(namespaces: set[str]) -> list[int]:
    """Pids of live processes whose PID namespace is one of ``namespaces``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "pid") in namespaces:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_three_hosts_start_fast_answer_with_their_own_names_and_stop_cleanly() -> None:
    with SshHostPool() as pool:
        started = time.monotonic()
        hosts = pool.start(3)
        startup_s = time.monotonic() - started
        base_dir = str(pool.base_dir)
        namespaces = {_pid_namespace(h.ns_pid) for h in hosts}

        assert [h.name for h in hosts] == ["host1", "host2", "host3"]
        assert startup_s < 3.0, f"3 hosts took {startup_s:.2f} s"
        assert len({h.port for h in hosts}) == 3
        assert len(namespaces) == 3
        assert namespaces.isdisjoint({_pid_namespace(os.getpid())})
        for host in hosts:
            assert _ssh(host, "hostname") == host.name
        assert pool.ssh_config.read_text().count("ControlPath") == 1
        assert len(_processes_in(namespaces)) >= 3

    assert _processes_in(namespaces) == []
    assert _processes_mentioning(base_dir) == []
    assert not Path(base_dir).exists()


def test_each_host_has_an_empty_home_and_its_own_read_only_boot_id() -> None:
    with SshHostPool() as pool:
        one, two = pool.start(["alpha", "beta"])

        boot_ids = {_ssh(h, "cat /proc/sys/kernel/random/boot_id") for h in (one, two)}
        real_boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        assert boot_ids == {h.boot_id_file.read_text().strip() for h in (one, two)}
        assert real_boot_id not in boot_ids
        assert _ssh(one, "ls -A ~ | grep -v '^.ansible$' | wc -l") == "0"
        assert _ssh(one, "echo $$") != ""  # a login is fast: no pyenv init from root's .bashrc
        write = subprocess.run(
            one.ssh_argv("echo x > /proc/sys/kernel/random/boot_id"), capture_output=True, check=False
        )
        assert write.returncode != 0
        assert pool.run_in("beta", ["hostname"]).stdout.strip() == "beta"
        assert pool.run_in(one, ["cat", "/proc/sys/kernel/random/boot_id"]).stdout.strip() in boot_ids


def test_known_hosts_pins_each_host_key() -> None:
    with SshHostPool() as pool:
        one, two = pool.start(2)
        lines = one.known_hosts.read_text().splitlines()

        assert len(lines) == 2
        assert {line.split()[0] for line in lines} == {f"[127.0.0.1]:{h.port}" for h in (one, two)}
        assert len({line.split()[2] for line in lines}) == 2  # two different host keys
        variables = one.ansible_host_vars()
        assert variables["ansible_port"] == one.port
        assert str(one.known_hosts) in variables["ansible_ssh_common_args"]
        assert "StrictHostKeyChecking=yes" in variables["ansible_ssh_common_args"]


def test_testinfra_reaches_a_host_through_the_pool_ssh_config() -> None:
    testinfra = require_module("testinfra", "pip install pytest-testinfra")
    with SshHostPool() as pool:
        (host,) = pool.start(["db1"])
        backend = testinfra.get_host(host.testinfra_url)

        assert backend.check_output("hostname") == "db1"
        assert backend.file("/proc/sys/kernel/random/boot_id").content_string.strip() == (
            host.boot_id_file.read_text().strip()
        )


def test_hosts_are_stopped_when_the_with_block_raises() -> None:
    with pytest.raises(RuntimeError, match="boom"), SshHostPool() as pool:
        hosts = pool.start(2)
        namespaces = {_pid_namespace(h.ns_pid) for h in hosts}
        raise RuntimeError("boom")

    assert _processes_in(namespaces) == []


def test_a_failing_start_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    # The namespace's init execs /bin/false instead of sshd: it "dies" at once.
    monkeypatch.setattr(sshd, "_NAMESPACE_INIT", sshd._NAMESPACE_INIT.replace(sshd.SSHD, "/bin/false"))
    with SshHostPool() as pool:
        with pytest.raises(sshd.LabError, match="sshd exited"):
            pool.start(2)
        assert pool.hosts == {}
        assert _processes_mentioning(str(pool.base_dir)) == []


def test_names_must_be_hostname_labels() -> None:
    with SshHostPool() as pool, pytest.raises(ValueError, match="hostname"):
        pool.start(["Bad_Name"])


def test_without_root_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with SshHostPool() as pool, pytest.raises(LabNeedsRoot, match="need root"):
        pool.start(1)
