"""Real libvirt nodes for tests: one session-mode ``libvirtd`` per node, run as ``nobody``.

Each node lives in its own directory (HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME,
XDG_RUNTIME_DIR, the socket directory) and runs inside its own mount + PID
namespace (``unshare --mount --pid --fork --kill-child --mount-proc``) under a
tiny init that reaps orphans. Ending the namespace ends every qemu the daemon
started, as a power-off would; :meth:`LibvirtDaemon.restart` wipes the runtime
dir too (session libvirtd runs autostart once per "boot", marked there), which
is the base of the reboot simulation.

>>> with running_daemons(2, "/var/tmp/ipsinfra-lab") as (a, b):  # doctest: +SKIP
...     conn = libvirt.open(a.uri)

Needs root, util-linux (``unshare``, ``setpriv``), Debian's ``libvirt-daemon``,
``libvirt-daemon-driver-qemu`` and ``qemu-system-x86``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import libvirt

from ipsinfra.errors import IpsinfraError

LIBVIRTD = "/usr/sbin/libvirtd"
QEMU = "/usr/bin/qemu-system-x86_64"
USER, GROUP = "nobody", "nogroup"
MIGRATION_PORT_BASE = 49152
PORTS_PER_NODE = 64
START_TIMEOUT_S = 20.0

# pid 1 of the node's PID namespace: runs the daemon, reaps every orphan
# (qemu is double-forked by libvirt and lands here), exits with the daemon.
_INIT = r"""
import os, signal, sys
child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        sys.exit(0)
    except InterruptedError:
        continue
    if pid == child:
        sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def _quiet(_ctx: object, _err: object) -> None:
    """Polling a starting daemon fails on purpose; libvirt would print each failure."""


libvirt.registerErrorHandler(_quiet, None)


class LabUnavailable(IpsinfraError, RuntimeError):
    """The machine cannot run the lab (not root, a package missing); the message says what to do."""


def check_requirements() -> None:
    """Raise LabUnavailable naming what is missing."""
    if os.geteuid() != 0:
        raise LabUnavailable("libvirt lab daemons need root (setpriv, unshare)")
    for path, package in ((LIBVIRTD, "libvirt-daemon libvirt-daemon-driver-qemu"), (QEMU, "qemu-system-x86")):
        if not Path(path).exists():
            raise LabUnavailable(f"{path} is missing: apt-get install {package}")
    for tool in ("unshare", "setpriv"):
        if shutil.which(tool) is None:
            raise LabUnavailable(f"`{tool}` is missing: apt-get install util-linux")


class LibvirtDaemon:
    """One lab node: a session ``libvirtd`` as ``nobody`` in its own namespaces.

    Args:
        name: the node's name (also its directory's name).
        base_dir: where node directories go; NOT under pytest's 0700 tmp root.
        index: distinct per concurrent daemon; picks the migration port range.
        short_alias: run the daemon's HOME/XDG dirs through a short ``/tmp/l<hex>``
            alias (the default). False gives it the real, deep paths, as a
            production session daemon under a deep home has them (tests of the
            UNIX socket path limit).
    """

    def __init__(
        self, name: str, base_dir: str | os.PathLike[str], index: int = 0, *, short_alias: bool = True
    ) -> None:
        self.name = name
        self.root = Path(base_dir) / name
        self.index = index
        self.short_alias = short_alias
        # qemu's UNIX sockets (guest agent channel, monitor) live under these
        # dirs and sun_path holds 107 bytes: the daemon sees them through a
        # short alias /tmp/l<hex> -> root (see _alias).
        self.home = self.root / "h"
        self.config_home = self.root / "c"
        self.cache_home = self.root / "k"
        self.runtime_dir = self.root / "r"
        self.sock_dir = self.root / "s"
        self.alias: Path | None = None
        self.config_file = self.root / "libvirtd.conf"
        self.log_file = self.root / "libvirtd.log"
        low = MIGRATION_PORT_BASE + index * PORTS_PER_NODE
        self.migration_ports = (low, low + PORTS_PER_NODE - 1)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.sock_dir / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///session?socket={self.socket_path}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # --- set-up ---------------------------------------------------------
    def _prepare(self) -> None:
        user = pwd.getpwnam(USER)
        base = self.root.parent
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        self.root.mkdir(exist_ok=True)
        self.root.chmod(0o755)
        for d in (self.home, self.config_home, self.cache_home, self.runtime_dir, self.sock_dir):
            d.mkdir(exist_ok=True)
            os.chown(d, user.pw_uid, user.pw_gid)
            d.chmod(0o700 if d == self.runtime_dir else 0o755)
        qemu_dir = self.config_home / "libvirt"
        qemu_dir.mkdir(exist_ok=True)
        os.chown(qemu_dir, user.pw_uid, user.pw_gid)
        low, high = self.migration_ports
        (qemu_dir / "qemu.conf").write_text(
            "\n".join(
                [
                    'security_driver = "none"',
                    'stdio_handler = "file"',
                    'vnc_listen = "127.0.0.1"',
                    # migration_address/_host = 127.0.0.1 are refused ("the local
                    # machine"): the driver passes LISTEN_ADDRESS/URI per migration.
                    f"migration_port_min = {low}",
                    f"migration_port_max = {high}",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        self.config_file.write_text(
            f'unix_sock_dir = "{self.sock_dir}"\n'
            f'log_outputs = "3:file:{self.root / "libvirtd-internal.log"}"\n',
            encoding="utf-8",
        )
        log = self.root / "libvirtd-internal.log"
        log.touch()
        os.chown(log, user.pw_uid, user.pw_gid)

    def _make_alias(self) -> Path:
        if self.alias is not None and self.alias.is_symlink():
            return self.alias
        for _ in range(100):
            alias = Path(f"/tmp/l{secrets.token_hex(3)}")
            try:
                alias.symlink_to(self.root)
            except FileExistsError:
                continue
            self.alias = alias
            return alias
        raise LabUnavailable(f"{self.name}: cannot create a short alias for {self.root} in /tmp")

    def _drop_alias(self) -> None:
        if self.alias is not None:
            with contextlib.suppress(FileNotFoundError):
                self.alias.unlink()
            self.alias = None

    def ensure_pool(self, name: str = "default") -> Path:
        """A started, autostarted dir storage pool ``name`` at ``<root>/pool`` (what
        ``Node.seed_pool`` names: NoCloud seeds are uploaded there). Idempotent."""
        user = pwd.getpwnam(USER)
        target = self.root / "pool"
        target.mkdir(exist_ok=True)
        os.chown(target, user.pw_uid, user.pw_gid)
        target.chmod(0o711)
        conn = libvirt.open(self.uri)
        try:
            try:
                pool = conn.storagePoolLookupByName(name)
            except libvirt.libvirtError:
                pool = conn.storagePoolDefineXML(
                    f"<pool type='dir'><name>{name}</name><target><path>{target}</path></target></pool>", 0
                )
            if not pool.isActive():
                pool.create(0)
            pool.setAutostart(1)
        finally:
            conn.close()
        return target

    def wipe_runtime(self) -> None:
        """Empty XDG_RUNTIME_DIR as a reboot empties /run (only while stopped)."""
        if self.running:
            raise LabUnavailable(f"{self.name}: stop the daemon before wiping its runtime dir")
        for child in self.runtime_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    # --- life cycle -----------------------------------------------------
    def start(self) -> LibvirtDaemon:
        """Start the daemon and wait until its qemu driver answers."""
        check_requirements()
        if not self.running:
            self.launch()
            self.wait_ready()
        return self

    def launch(self) -> None:
        """Start the daemon without waiting (:meth:`wait_ready` waits)."""
        self._prepare()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        short = self._make_alias() if self.short_alias else self.root
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(short / self.home.name),
            "USER": USER,
            "XDG_CONFIG_HOME": str(short / self.config_home.name),
            "XDG_CACHE_HOME": str(short / self.cache_home.name),
            "XDG_RUNTIME_DIR": str(short / self.runtime_dir.name),
            "LANG": "C.UTF-8",
        }
        cmd = [
            "unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--",
            sys.executable, "-c", _INIT,
            "setpriv", f"--reuid={USER}", f"--regid={GROUP}", "--clear-groups", "--",
            LIBVIRTD, "--config", str(self.config_file),
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        """Poll (no blind sleeps) until the daemon answers; raise LabUnavailable with its log if not."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.running:
                raise LabUnavailable(
                    f"{self.name}: libvirtd exited at start; see {self.root}:\n{self._log_tail()}"
                )
            if self._answers():
                return
            time.sleep(0.02)
        self.stop()
        raise LabUnavailable(
            f"{self.name}: libvirtd socket not ready after {START_TIMEOUT_S:g} s:\n{self._log_tail()}"
        )

    def _answers(self) -> bool:
        """The socket accepts AND the qemu driver answers (the socket opens before drivers load)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(self.socket_path))
            except OSError:
                return False
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError:
            return False
        try:
            conn.getVersion()
            return True
        except libvirt.libvirtError:
            return False
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    def _log_tail(self) -> str:
        try:
            lines = [
                *self.log_file.read_text(errors="replace").splitlines()[-10:],
                *(self.root / "libvirtd-internal.log").read_text(errors="replace").splitlines()[-10:],
            ]
            return "\n".join(lines)
        except OSError:
            return "(no log)"

    def namespace_pids(self) -> list[int]:
        """Host PIDs of every process in the node's PID namespace (init, libvirtd, qemu...)."""
        if self._proc is None:
            return []
        try:
            ns = os.readlink(f"/proc/{self.init_pid()}/ns/pid")
        except (OSError, LabUnavailable):
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns" / "pid") == ns:
                        pids.append(int(entry.name))
        return sorted(pids)

    def init_pid(self) -> int:
        """Host PID of the namespace's init (the unshare child)."""
        if self._proc is None:
            raise LabUnavailable(f"{self.name}: not started")
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children").read_text().split()
        if not children:
            raise LabUnavailable(f"{self.name}: the node's namespace is gone")
        return int(children[0])

    def libvirtd_pid(self) -> int:
        """Host PID of libvirtd itself."""
        children = Path(f"/proc/{self.init_pid()}/task/{self.init_pid()}/children").read_text().split()
        if not children:
            raise LabUnavailable(f"{self.name}: libvirtd is not running")
        return int(children[0])

    def kill_libvirtd(self, sig: int = signal.SIGKILL) -> None:
        """Fault injection: signal libvirtd (SIGKILL ends the namespace with all its guests)."""
        os.kill(self.libvirtd_pid(), sig)

    def stop(self, *, keep_alias: bool = False) -> None:
        """Kill the node's namespace: libvirtd and every qemu in it. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                # --kill-child: unshare's death SIGKILLs the namespace's init, and the
                # kernel kills (and waits for) every process left in the namespace.
                proc.kill()
            proc.wait(timeout=30)
        if not keep_alias:
            self._drop_alias()

    def restart(self) -> LibvirtDaemon:
        """Power-cycle the node: stop, empty the runtime dir, start.

        The short alias stays: libvirt's autostart links point at config files
        through it, and a node's paths do not change across a reboot.
        """
        self.stop(keep_alias=True)
        self.wipe_runtime()
        return self.start()

    def __enter__(self) -> LibvirtDaemon:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


DaemonNode = LibvirtDaemon


def start_daemons(n: int, base_dir: str | os.PathLike[str], *, prefix: str = "lvnode") -> list[LibvirtDaemon]:
    """Start ``n`` daemons (``<prefix>1``..) side by side; on failure none is left running."""
    check_requirements()
    daemons = [LibvirtDaemon(f"{prefix}{i + 1}", base_dir, index=i) for i in range(n)]
    try:
        for d in daemons:
            d.launch()
        for d in daemons:
            d.wait_ready()
    except BaseException:
        stop_daemons(daemons)
        raise
    return daemons


def stop_daemons(daemons: list[LibvirtDaemon]) -> None:
    for d in daemons:
        d.stop()


@contextlib.contextmanager
def running_daemons(
    n: int, base_dir: str | os.PathLike[str], *, prefix: str = "lvnode"
) -> Iterator[list[LibvirtDaemon]]:
    """``start_daemons`` as a context manager that always stops them."""
    daemons = start_daemons(n, base_dir, prefix=prefix)
    try:
        yield daemons
    finally:
        stop_daemons(daemons)
