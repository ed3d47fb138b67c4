"""A throw-away PostgreSQL cluster for the store's tests: Debian's server binaries,
a temp dir, a Unix socket only, a non-root server user.

``initdb`` refuses root, so as root the server runs as ``postgres`` (or
``nobody``) through ``setpriv``; its directory is made with ``mkdtemp`` outside
pytest's 0700 tmp root, which that user could not enter. It listens on no TCP
address at all (``listen_addresses = ''``): the URL names the socket directory,
``postgresql+psycopg://ipsinfra@/DB?host=<dir>``. fsync is off: the cluster
lives for one test session.

Roles: ``ipsinfra`` (superuser, trust) and ``secretive`` (scram-sha-256 with
:data:`SECRET`), for the password-from-a-file tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "ipsinfra"
SECRET_USER = "secretive"
SECRET = "Pg-s3cret-9f2Kq"  # a test-only password; never in a URL the tests print
_VERSION_DIR = Path("/usr/lib/postgresql")


class PostgresUnavailable(RuntimeError):
    """The cluster could not be set up; the message says why (for tests.conftest.missing)."""


def server_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` with initdb and pg_ctl."""
    found = sorted(
        (p for p in _VERSION_DIR.glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0],
    )
    if not found:
        raise PostgresUnavailable(
            f"PostgreSQL's server binaries are not installed ({_VERSION_DIR}/<ver>/bin/initdb): "
            "apt-get install postgresql (scripts/dev setup does)"
        )
    return found[-1]


class PostgresCluster:
    """One running cluster; :meth:`new_database` hands each test its own database."""

    def __init__(self) -> None:
        self.bindir = server_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="ipsinfra-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "server.log"
        self._prefix: list[str] = []
        self._names = itertools.count(1)
        self._running = False
        try:
            self._as_server_user()
            self._initdb()
            self._start()
            self._admin(
                f"CREATE ROLE {SECRET_USER} LOGIN PASSWORD '{SECRET}'",
            )
        except PostgresUnavailable:
            self.stop()
            raise
        except Exception as exc:  # no psycopg, the server refusing its first connection...
            self.stop()
            raise PostgresUnavailable(f"{type(exc).__name__}: {exc}") from exc

    # --- set-up ---------------------------------------------------------------
    def _as_server_user(self) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() != 0:
            return  # the current user runs the server
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise PostgresUnavailable("setpriv is not installed (util-linux): initdb refuses to run as root")
        for name in ("postgres", "nobody"):
            try:
                user = pwd.getpwnam(name)
            except KeyError:
                continue
            break
        else:
            raise PostgresUnavailable(
                "no 'postgres' or 'nobody' user to run the server as (initdb refuses root)"
            )
        for path in (self.root, self.socket_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
        self._prefix = [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]

    def _run(self, *args: str, timeout: float = 60) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        done = subprocess.run(
            [*self._prefix, *args], env=env, cwd=self.root, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            if self.log.exists():
                tail += self.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed (exit {done.returncode}): {' | '.join(tail)}"
            )

    def _initdb(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        (self.data / "pg_hba.conf").write_text(
            f"local all {SECRET_USER} scram-sha-256\nlocal all all trust\n", encoding="utf-8"
        )
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# tests/pg.py: a Unix socket only, nothing durable\n"
                "listen_addresses = ''\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 60\nshared_buffers = 16MB\n"
            )

    def _start(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"
        )
        self._running = True

    def _admin(self, *statements: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), user=SUPERUSER, dbname=database, autocommit=True
        ) as c:
            for statement in statements:
                c.execute(statement.encode())  # test-made literals only

    # --- for the tests --------------------------------------------------------
    def url(self, database: str, *, user: str = SUPERUSER, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{user}@/{database}?host={self.socket_dir}"

    def new_database(self, *, owner: str = SUPERUSER) -> str:
        """A fresh, empty database; its name."""
        name = f"t{next(self._names)}"
        self._admin(f"CREATE DATABASE {name} OWNER {owner}")
        return name

    def stop(self) -> None:
        """Stop the server and remove its directory (the end of the test session)."""
        if self._running:
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self._running = False
        shutil.rmtree(self.root, ignore_errors=True)
