"""SSH test hosts: one real Debian ``sshd`` per host, each in its own namespaces.

Every host is ``unshare --mount --uts --pid --mount-proc --fork`` running
``/usr/sbin/sshd -D`` as the namespace's init, with

* its own hostname (set with ``hostname`` inside the UTS namespace),
* its own ed25519 host key, listed in the pool's ``known_hosts``,
* an empty home bind-mounted over ``/root`` (root's real ``.bashrc`` runs
  ``pyenv init``, which stalls every login for a minute),
* its own boot id: a read-only file bind-mounted over
  ``/proc/sys/kernel/random/boot_id`` (the reboot check reads it),
* a free port on ``127.0.0.1`` and key-only login with the pool's client key.

Killing the namespace's init kills every process in it, so :meth:`SshHostPool.stop`
leaves nothing behind. Needs root.

Example::

    with SshHostPool() as pool:
        web1, web2 = pool.start(["web1", "web2"])
        subprocess.run(web1.ssh_argv("hostname"), check=True)    # prints "web1"
        inventory = pool.ansible_inventory()                       # for ipsinfra.playbooks.run
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ipsinfra.errors import InvalidInput, IpsinfraError, OperationTimeout

__all__ = ["LabError", "LabNeedsRoot", "SshHost", "SshHostPool"]

SSHD = "/usr/sbin/sshd"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# Runs as pid 1 of the new namespaces (unshare --fork); $1..$4 are passed as argv
# so no name or path is ever interpolated into shell text.
_NAMESPACE_INIT = f"""\
set -e
hostname "$1"
mount --bind "$2" /root
mount --bind "$3" {BOOT_ID_PATH}
mount -o remount,bind,ro {BOOT_ID_PATH}
exec {SSHD} -D -e -f "$4"
"""


class LabError(IpsinfraError, RuntimeError):
    """The lab could not build or run a test host."""


class LabNeedsRoot(LabError, PermissionError):
    """The lab needs root (namespaces, bind mounts, sshd)."""


@dataclass(frozen=True)
class SshHost:
    """One running SSH test host.

    ``host``/``port`` is where sshd listens; ``key_file`` is the client key,
    ``known_hosts`` holds this host's key under ``[host]:port``, ``ssh_config``
    has a ``Host <name>`` entry (with a short ControlPath) for ssh and testinfra,
    ``ns_pid`` is the namespace's init (sshd) as seen from outside.
    """

    name: str
    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    ssh_config: Path
    boot_id_file: Path
    ns_pid: int

    def ansible_host_vars(self) -> dict[str, Any]:
        """Host vars that make Ansible reach this host with proper host-key checking.

        >>> host.ansible_host_vars()["ansible_port"]  # doctest: +SKIP
        40123
        """
        return {
            "ansible_connection": "ssh",
            "ansible_host": self.host,
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": str(self.key_file),
            "ansible_ssh_common_args": (
                f"-o UserKnownHostsFile={self.known_hosts} -o GlobalKnownHostsFile=/dev/null"
                " -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
            ),
            "ansible_python_interpreter": "/usr/bin/python3",
        }

    def ssh_argv(self, *command: str) -> list[str]:
        """``ssh`` argv that runs ``command`` on this host (via the pool's ssh_config)."""
        return ["ssh", "-F", str(self.ssh_config), self.name, *command]

    def nsenter_argv(self, *command: str) -> list[str]:
        """argv that runs ``command`` inside this host's namespaces, without SSH."""
        return [
            "nsenter",
            f"--target={self.ns_pid}",
            "--mount",
            "--uts",
            "--pid",
            "--",
            *command,
        ]

    @property
    def testinfra_url(self) -> str:
        """A ``testinfra.get_host`` URL: ``ssh://<name>?ssh_config=...``."""
        return f"ssh://{self.name}?ssh_config={self.ssh_config}"


@dataclass
class _Running:
    host: SshHost
    proc: subprocess.Popen[bytes]
    state_dir: Path


def _kill_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """Kill each unshare's child, the namespace's init, and reap the unshare.

    The kernel kills every other process of a PID namespace when its init dies,
    and the init is only reaped once they are all gone: so when ``unshare``
    (which waits for it) has exited, nothing of the host is left. The init's pid
    is read from the live unshare's children, so a recycled pid is never hit.
    """
    for proc in procs:
        if proc.poll() is None:
            for pid in child_pids(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # --kill-child makes the kernel kill the init when unshare dies.
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def child_pids(pid: int) -> list[int]:
    """The processes ``pid``'s main thread forked (``/proc/<pid>/task/<pid>/children``)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def pinned_ssh_command(path: Path, known_hosts: Path) -> Path:
    """Write an ssh-compatible command at ``path`` that trusts only ``known_hosts``.

    For a libvirt URI's ``command=``: libvirt's own ssh (and ipsinfra's, which
    reads the same URI) then checks a test host's key as ``~/.ssh/known_hosts``
    would check a real node's.
    """
    path.write_text(
        "#!/bin/sh\n"
        f"exec ssh -o UserKnownHostsFile={known_hosts} -o GlobalKnownHostsFile=/dev/null "
        '-o StrictHostKeyChecking=yes "$@"\n',
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class SshHostPool:
    """A set of SSH test hosts; a context manager that stops them all on exit.

    Args:
        address: the loopback address sshd listens on (127.0.0.0/8 only).
        user: the login user (root: the hosts need it to be anything else anyway).
        base_dir: where keys, configs and homes go; a fresh short ``/tmp/ipsl-*``
            by default (ControlPath sockets must stay under 108 bytes).
        start_timeout: seconds a host may take to accept connections.
    """

    def __init__(
        self,
        *,
        address: str = "127.0.0.1",
        user: str = "root",
        base_dir: Path | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        if not address.startswith("127."):
            raise InvalidInput(f"address: {address!r} is not a loopback address (127.0.0.0/8)")
        self.address = address
        self.user = user
        self.start_timeout = start_timeout
        self._given_base_dir = base_dir
        self._base: Path | None = None
        self._running: dict[str, _Running] = {}
        self._procs: list[subprocess.Popen[bytes]] = []
        # Safety net if a pool is dropped without stop(): kill what it started.
        self._finalizer = weakref.finalize(self, _kill_all, self._procs)

    # --- context manager -------------------------------------------------
    def __enter__(self) -> SshHostPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- paths -------------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        """The pool's state directory (created on first start)."""
        if self._base is None:
            if self._given_base_dir is not None:
                self._given_base_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._base = self._given_base_dir
            else:
                self._base = Path(tempfile.mkdtemp(prefix="ipsl-", dir="/tmp"))
        return self._base

    @property
    def ssh_config(self) -> Path:
        return self.base_dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.base_dir / "known_hosts"

    @property
    def key_file(self) -> Path:
        return self.base_dir / "id_ed25519"

    @property
    def hosts(self) -> dict[str, SshHost]:
        """The running hosts by name."""
        return {name: r.host for name, r in self._running.items()}

    def __getitem__(self, name: str) -> SshHost:
        try:
            return self._running[name].host
        except KeyError:
            raise InvalidInput(f"host: no running test host named {name!r}") from None

    # --- start / stop --------------------------------------------------------
    def start(self, hosts: int | Sequence[str]) -> list[SshHost]:
        """Start ``hosts`` (a count, named ``host1``..., or a list of hostnames).

        Returns once every sshd accepts connections. On any failure the hosts
        this call started are stopped again and :class:`LabError` is raised.
        """
        names = self._names(hosts)
        self._preflight()
        started: list[_Running] = []
        try:
            self._ensure_client_key()
            for name in names:
                started.append(self._spawn(name))
            for i, running in enumerate(started):
                started[i] = self._wait_ready(running)
            for running in started:
                self._running[running.host.name] = running
            self._write_client_files()
        except BaseException:
            self._kill([r for r in started if r.host.name not in self._running])
            for running in started:
                self._running.pop(running.host.name, None)
            raise
        return [r.host for r in started]

    def stop(self) -> None:
        """Stop every host, close SSH control masters, remove the state directory."""
        self._close_control_masters()
        self._kill(list(self._running.values()))
        self._running.clear()
        _kill_all(self._procs)
        self._procs.clear()
        if self._base is not None:
            if self._given_base_dir is None:
                shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    def run_in(
        self,
        host: SshHost | str,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 30.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the host's namespaces (nsenter, no SSH); text output."""
        target = self[host] if isinstance(host, str) else host
        try:
            return subprocess.run(
                target.nsenter_argv(*argv),
                capture_output=True,
                text=True,
                check=check,
                timeout=timeout,
            )
        except subprocess.CalledProcessError as exc:
            raise LabError(
                f"{target.name}: {argv[0]!r} exited {exc.returncode}: {exc.stderr.strip()[:500]}"
            ) from None

    def ansible_inventory(self, hosts: Iterable[SshHost] | None = None, group: str = "lab") -> dict[str, Any]:
        """An Ansible inventory dict with ``hosts`` (default: all running) in ``group``."""
        chosen = list(hosts) if hosts is not None else [r.host for r in self._running.values()]
        return {
            "all": {
                "children": {group: {"hosts": {h.name: h.ansible_host_vars() for h in chosen}}},
            }
        }

    # --- internals ---------------------------------------------------------------
    def _names(self, hosts: int | Sequence[str]) -> list[str]:
        if isinstance(hosts, int):
            if hosts < 1:
                raise InvalidInput(f"hosts: {hosts} is not a positive count")
            names: list[str] = []
            i = 1
            while len(names) < hosts:
                candidate = f"host{i}"
                if candidate not in self._running:
                    names.append(candidate)
                i += 1
            return names
        names = list(hosts)
        for name in names:
            if not isinstance(name, str) or not HOSTNAME_RE.fullmatch(name):
                raise InvalidInput(f"hosts: {name!r} is not a lowercase hostname label")
            if name in self._running:
                raise InvalidInput(f"hosts: {name!r} is already running in this pool")
        if len(set(names)) != len(names):
            raise InvalidInput(f"hosts: duplicate names in {names!r}")
        return names

    def _preflight(self) -> None:
        if os.geteuid() != 0:
            raise LabNeedsRoot("SSH test hosts need root (unshare, bind mounts, sshd); run as root or in CI")
        for tool in (SSHD, "unshare", "nsenter", "ssh-keygen", "ssh"):
            if shutil.which(tool) is None:
                raise LabError(
                    f"SSH test hosts need {tool!r} (apt-get install openssh-server openssh-client util-linux)"
                )
        # Debian's unit creates the privilege-separation directory; do what it does.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    def _ensure_client_key(self) -> None:
        if not self.key_file.exists():
            self._keygen(self.key_file, comment="ipsinfra-lab-client")
        (self.base_dir / "cm").mkdir(mode=0o700, exist_ok=True)

    @staticmethod
    def _keygen(path: Path, comment: str) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )

    def _spawn(self, name: str, port: int | None = None) -> _Running:
        state = self.base_dir / name
        home = state / "home"
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        host_key = state / "ssh_host_ed25519_key"
        if not host_key.exists():
            self._keygen(host_key, comment=f"{name}-host")
        boot_id = state / "boot_id"
        if not boot_id.exists():
            boot_id.write_text(f"{uuid.uuid4()}\n")
            boot_id.chmod(0o444)
        port = port or _free_port(self.address)
        config = state / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    f"ListenAddress {self.address}",
                    f"HostKey {host_key}",
                    f"PidFile {state / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.base_dir / 'authorized_keys'}",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "X11Forwarding no",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "MaxSessions 64",
                    "MaxStartups 200",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        authorized = self.base_dir / "authorized_keys"
        if not authorized.exists():
            authorized.write_text(Path(f"{self.key_file}.pub").read_text())
        log = state / "sshd.log"
        with log.open("ab") as log_fh:
            proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--uts",
                    "--pid",
                    "--mount-proc",
                    "--fork",
                    "--kill-child",
                    "--",
                    "/bin/sh",
                    "-c",
                    _NAMESPACE_INIT,
                    "ipsinfra-lab-init",
                    name,
                    str(home),
                    str(boot_id),
                    str(config),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append(proc)
        host = SshHost(
            name=name,
            host=self.address,
            port=port,
            user=self.user,
            key_file=self.key_file,
            known_hosts=self.known_hosts,
            ssh_config=self.ssh_config,
            boot_id_file=boot_id,
            ns_pid=0,  # known once unshare has forked; see _wait_ready
        )
        return _Running(host=host, proc=proc, state_dir=state)

    def _wait_ready(self, running: _Running, retries: int = 3) -> _Running:
        deadline = time.monotonic() + self.start_timeout
        ns_pid = 0
        while True:
            if not ns_pid:
                kids = child_pids(running.proc.pid)
                if kids:
                    ns_pid = kids[0]
            if running.proc.poll() is not None:
                log = running.state_dir / "sshd.log"
                tail = _log_tail(log)
                if retries > 0 and "Address already in use" in tail:
                    # Someone took the port between our probe and sshd's bind.
                    log.unlink(missing_ok=True)
                    return self._wait_ready(self._spawn(running.host.name), retries - 1)
                raise LabError(
                    f"{running.host.name}: sshd exited with {running.proc.returncode} before "
                    f"accepting connections; log:\n{tail}"
                )
            if ns_pid and self._banner_ok(running.host.port):
                break
            if time.monotonic() > deadline:
                raise OperationTimeout(
                    f"sshd on {self.address}:{running.host.port} did not accept "
                    f"connections within {self.start_timeout:g} s; log:\n"
                    f"{_log_tail(running.state_dir / 'sshd.log')}",
                    node=running.host.name,
                )
            time.sleep(0.01)
        return _Running(
            host=dataclasses.replace(running.host, ns_pid=ns_pid),
            proc=running.proc,
            state_dir=running.state_dir,
        )

    def _banner_ok(self, port: int) -> bool:
        try:
            with socket.create_connection((self.address, port), timeout=1) as sock:
                return sock.recv(64).startswith(b"SSH-2.0-")
        except OSError:
            return False

    def _write_client_files(self) -> None:
        known: list[str] = []
        entries: list[str] = []
        for running in self._running.values():
            host = running.host
            pub = (running.state_dir / "ssh_host_ed25519_key.pub").read_text().split()
            known.append(f"[{host.host}]:{host.port} {pub[0]} {pub[1]}")
            entries += [
                f"Host {host.name}",
                f"  HostName {host.host}",
                f"  Port {host.port}",
                "",
            ]
        self.known_hosts.write_text("\n".join(known) + "\n")
        common = [
            "Host *",
            f"  User {self.user}",
            f"  IdentityFile {self.key_file}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {self.known_hosts}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  BatchMode yes",
            "  ControlMaster auto",
            f"  ControlPath {self.base_dir / 'cm' / '%C'}",
            "  ControlPersist 60s",
            "  LogLevel ERROR",
            "",
        ]
        tmp = self.ssh_config.with_suffix(".tmp")
        tmp.write_text("\n".join(entries + common))
        tmp.replace(self.ssh_config)

    def _close_control_masters(self) -> None:
        if self._base is None:
            return
        cm = self._base / "cm"
        if not cm.is_dir():
            return
        for sock in cm.iterdir():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "ipsinfra-lab"],
                    capture_output=True,
                    timeout=5,
                    check=False,
                )

    def _kill(self, runnings: list[_Running]) -> None:
        procs = [r.proc for r in runnings]
        _kill_all(procs)
        for proc in procs:
            with contextlib.suppress(ValueError):
                self._procs.remove(proc)
