"""A throw-away IMAP server for the abuse mailbox tests: Debian's Dovecot, a temp dir,
loopback only, TLS required with a certificate the client verifies.

Everything lives in one ``mkdtemp`` directory outside pytest's 0700 tmp root
(the mail processes run as ``nobody`` when the tests run as root; Dovecot
refuses to serve mail as root): the config, a CA and a server certificate for
``127.0.0.1``/``localhost`` made by ``openssl``, a ``passwd-file`` with one
test user, the user's Maildir, ``base_dir``/``state_dir`` and the log. It
listens only on ``127.0.0.1:<free port>`` (implicit TLS, no plain-text
listener) and runs in the foreground (``dovecot -F -c conf``); :meth:`stop`
ends it and removes the directory.

Mail is delivered with IMAP APPEND (which also sets INTERNALDATE), and the
tests read flags back over IMAP, through the same verified TLS.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

USER = "abuse"
PASSWORD = "Imap-t3st-pw-4Kq9"  # a test-only password; never printed by the tests
DOVECOT = "/usr/sbin/dovecot"
IMAP_BINARY = "/usr/lib/dovecot/imap"


class DovecotUnavailable(RuntimeError):
    """The server could not be set up; the message says why (for tests.conftest.missing)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A CA (key, certificate) made by openssl."""
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return key, cert


def make_server_cert(directory: Path, ca_key: Path, ca_cert: Path) -> tuple[Path, Path]:
    """A server key and certificate for 127.0.0.1 and localhost, signed by the CA."""
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        encoding="utf-8",
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    return key, cert


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise DovecotUnavailable(f"openssl {args[0]} failed: {done.stderr.strip()[-300:]}")


class DovecotServer:
    """One running Dovecot with one user (:data:`USER` / :data:`PASSWORD`) and a Maildir."""

    def __init__(self) -> None:
        for binary in (DOVECOT, IMAP_BINARY):
            if not Path(binary).exists():
                raise DovecotUnavailable(f"{binary} is not installed (apt-get install dovecot-imapd)")
        if shutil.which("openssl") is None:
            raise DovecotUnavailable("openssl is not installed (apt-get install openssl)")
        self.root = Path(tempfile.mkdtemp(prefix="ipsinfra-dovecot-"))
        self.host = "127.0.0.1"
        self.port = free_port()
        self.log = self.root / "dovecot.log"
        self._proc: subprocess.Popen[bytes] | None = None
        try:
            self.root.chmod(0o755)  # the mail user (nobody, as root) must reach its Maildir
            tls = self.root / "tls"
            tls.mkdir()
            ca_key, self.ca_file = make_ca(tls, "ipsinfra-test-ca")
            self.server_key, self.server_cert = make_server_cert(tls, ca_key, self.ca_file)
            self._write_config()
            self._start()
        except BaseException:
            self.stop()
            raise

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / USER

    def url(self, folder: str = "INBOX", *, port: int | None = None) -> str:
        return f"imaps://{USER}@{self.host}:{port or self.port}/{folder}"

    def _write_config(self) -> None:
        if os.geteuid() == 0:
            mail_user = pwd.getpwnam("nobody")
            login_user, internal_user = "dovenull", "dovecot"
            for name in (login_user, internal_user):
                try:
                    pwd.getpwnam(name)
                except KeyError:
                    raise DovecotUnavailable(
                        f"no user {name!r} (the dovecot-core package makes it)"
                    ) from None
        else:
            mail_user = pwd.getpwuid(os.getuid())
            login_user = internal_user = mail_user.pw_name
        for sub in ("run", "state", "home", "mail"):
            (self.root / sub).mkdir()
        for sub in ("home", "mail"):
            os.chown(self.root / sub, mail_user.pw_uid, mail_user.pw_gid)
        users = self.root / "users"
        users.write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n", encoding="utf-8")
        users.chmod(0o644)
        self.config = self.root / "dovecot.conf"
        self.config.write_text(
            f"""# tests/dovecot.py: a throw-away server on loopback
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = ipsinfra-test-{self.port}
listen = 127.0.0.1
protocols = imap
log_path = {self.log}
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = {min(mail_user.pw_uid, 500)}
ssl = required
ssl_cert = <{self.server_cert}
ssl_key = <{self.server_key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={self.root}/home/%u
}}
mail_location = maildir:{self.root}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Done {{
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
""",
            encoding="utf-8",
        )

    def _start(self) -> None:
        with (self.root / "stderr.log").open("wb") as stderr:
            self._proc = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DovecotUnavailable(f"dovecot exited ({self._proc.returncode}): {self._tail()}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise DovecotUnavailable(f"dovecot did not listen on {self.host}:{self.port} in 15 s: {self._tail()}")

    def _tail(self) -> str:
        lines: list[str] = []
        for path in (self.root / "stderr.log", self.log):
            if path.exists():
                lines += path.read_text(errors="replace").strip().splitlines()[-5:]
        return " | ".join(lines)

    # --- for the tests --------------------------------------------------------
    def client(self) -> imaplib.IMAP4_SSL:
        """A logged-in IMAP client that verifies the server's certificate with the test CA."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def append(self, raw: bytes, *, when: dt.datetime | None = None, folder: str = "INBOX") -> None:
        """Deliver ``raw`` (IMAP APPEND; INTERNALDATE ``when`` when given)."""
        imap = self.client()
        try:
            stamp = imaplib.Time2Internaldate(when) if when is not None else None
            typ, data = imap.append(folder, None, stamp, raw)
            assert typ == "OK", data
        finally:
            imap.logout()

    def flags(self, folder: str = "INBOX") -> list[set[str]]:
        """The flags of every message in ``folder``, in UID order."""
        imap = self.client()
        try:
            imap.select(f'"{folder}"', readonly=True)
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
            assert typ == "OK", data
            found: list[set[str]] = []
            for item in data:
                if not isinstance(item, bytes) or b"FLAGS" not in item:
                    continue
                inner = item.split(b"FLAGS (", 1)[1].split(b")", 1)[0].decode()
                found.append(set(inner.split()) - {"\\Recent"})  # \Recent belongs to a session, not the mail
            return found
        finally:
            imap.logout()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)
        self._proc = None
        shutil.rmtree(self.root, ignore_errors=True)
