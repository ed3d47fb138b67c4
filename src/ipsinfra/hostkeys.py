"""SSH host keys: pinned in known_hosts files, fetched and shown before anyone trusts them.

ipsinfra never accepts a host key it has not been told about. A switch's key
is looked up in the inventory's ``ssh_known_hosts`` file for it (the field
nodes use), else in the user's ``~/.ssh/known_hosts``; entries are named as
OpenSSH names them, ``host`` on port 22 and ``[host]:port`` elsewhere (hashed
entries, ``ssh-keyscan -H``, work too). An unknown key raises
:class:`HostKeyUnknown`, a different key :class:`HostKeyChanged`, each with the
key's ``SHA256:`` fingerprint, the OpenSSH way of showing it.

A first key is pinned on purpose: ``ipsinfra trust <switch-or-node>`` fetches
it (:func:`fetch_host_key`), prints its fingerprint and appends it
(:func:`pin`) only after ``--yes`` or a typed confirmation. Without ipsinfra::

    ssh-keyscan -p 2222 -t ed25519 sw1.example.net > /tmp/sw1.key
    ssh-keygen -lf /tmp/sw1.key            # compare with the switch's console
    cat /tmp/sw1.key >> ~/.ssh/known_hosts   # or the inventory's ssh_known_hosts file
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipsinfra.errors import InvalidInput, IpsinfraError

__all__ = [
    "HostKey",
    "HostKeyChanged",
    "HostKeyError",
    "HostKeyFetchFailed",
    "HostKeyUnknown",
    "RefuseUnknownKeys",
    "default_known_hosts",
    "fetch_host_key",
    "fingerprint",
    "host_key_refusal",
    "known_hosts_name",
    "lookup",
    "pin",
]

SSH_PORT = 22


class HostKeyError(IpsinfraError, ConnectionError):
    """A host's SSH key is not the pinned one; nothing was sent to it (no password, no command)."""


class HostKeyFetchFailed(IpsinfraError, ConnectionError):
    """No SSH server answered at the address, so there is no key to show."""


class HostKeyUnknown(HostKeyError):
    """No key is pinned for the host: pin it after checking its fingerprint (``ipsinfra trust``)."""


class HostKeyChanged(HostKeyError):
    """The host offered a key other than the pinned one: someone else may be answering."""


def _paramiko() -> Any:
    return importlib.import_module("paramiko")  # no type stubs


@dataclass(frozen=True)
class HostKey:
    """A public host key: ``ssh-ed25519 AAAA...`` and its fingerprint."""

    key_type: str
    base64: str

    @classmethod
    def of(cls, key: Any) -> HostKey:
        """From a paramiko ``PKey``."""
        return cls(str(key.get_name()), str(key.get_base64()))

    @property
    def fingerprint(self) -> str:
        return fingerprint(base64.b64decode(self.base64))

    def known_hosts_line(self, name: str) -> str:
        return f"{name} {self.key_type} {self.base64}"


def fingerprint(key: Any) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a key (paramiko ``PKey`` or its wire bytes).

    >>> fingerprint(b"...")  # doctest: +SKIP
    'SHA256:u3VjPVdO1ml3YBg8hbKV9JkhoPpAj6r3eEq9nYwXjiU'
    """
    blob = key if isinstance(key, bytes) else key.asbytes()
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")
    return "SHA256:" + digest.rstrip("=")


def known_hosts_name(host: str, port: int = SSH_PORT) -> str:
    """The name OpenSSH (and paramiko) look a host up by: ``host`` or ``[host]:port``."""
    return host if port == SSH_PORT else f"[{host}]:{port}"


def default_known_hosts() -> Path:
    """The user's ``~/.ssh/known_hosts``."""
    return Path("~/.ssh/known_hosts").expanduser()


def known_hosts_file(path: str | os.PathLike[str] | None) -> Path:
    """``path`` (``~`` expanded), or the user's known_hosts when None."""
    return Path(path).expanduser() if path else default_known_hosts()


def lookup(path: Path, host: str, port: int = SSH_PORT) -> list[HostKey]:
    """The keys ``path`` pins for the host (none if the file is missing)."""
    keys = _paramiko().HostKeys()
    if path.is_file():
        try:
            keys.load(str(path))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"ssh_known_hosts: file {str(path)!r} cannot be read: {exc}") from None
    found = keys.lookup(known_hosts_name(host, port)) or {}
    return [HostKey.of(found[name]) for name in found.keys()]  # noqa: SIM118 (SubDict has no iter)


def fetch_host_key(host: str, port: int = SSH_PORT, *, timeout: float = 10.0) -> HostKey:
    """Ask the host for its key (key exchange only: nothing is authenticated or sent).

    The key type is the one paramiko (and so netmiko) would get first.

    Raises:
        HostKeyFetchFailed: no SSH server answered.
    """
    paramiko = _paramiko()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise HostKeyFetchFailed(f"{host}:{port}: cannot connect: {exc.strerror or exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        return HostKey.of(transport.get_remote_server_key())
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise HostKeyFetchFailed(f"{host}:{port}: no SSH key exchange: {exc}") from None
    finally:
        transport.close()
        sock.close()


def pin(path: Path, host: str, port: int, key: HostKey) -> bool:
    """Append ``key`` for the host to ``path`` (made 0600, its directory 0700 if new).

    Returns False if that key is already pinned.

    Raises:
        HostKeyChanged: another key is pinned for the host; remove it first
            (``ssh-keygen -R '[host]:port' -f <path>``) if the change is known to be real.
    """
    pinned = lookup(path, host, port)
    if key in pinned:
        return False
    name = known_hosts_name(host, port)
    if pinned:
        raise HostKeyChanged(
            f"{name}: {path} pins {', '.join(f'{k.key_type} {k.fingerprint}' for k in pinned)}, "
            f"the host offers {key.key_type} {key.fingerprint}; if the change is known, remove the old "
            f"entry (ssh-keygen -R '{name}' -f {path}) and trust again"
        )
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as fh:
        if fh.tell() > 0:
            with open(path, "rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    fh.write("\n")
        fh.write(key.known_hosts_line(name) + "\n")
    return True


class _UnknownKey(Exception):
    """Raised inside paramiko's connect by :class:`RefuseUnknownKeys`; carries the key."""

    def __init__(self, name: str, key: Any) -> None:
        super().__init__(f"Server {name!r} not found in known_hosts ({fingerprint(key)})")
        self.name = name
        self.key = key


@functools.cache
def _unknown_key_class() -> type[_UnknownKey]:
    # paramiko's SSHException as a base, so netmiko tidies up the transport as for
    # any key-exchange failure; built lazily to keep paramiko out of the import.
    ssh_exception = _paramiko().SSHException
    return type("UnknownHostKey", (_UnknownKey, ssh_exception), {})


class RefuseUnknownKeys:
    """A paramiko missing-host-key policy: refuse, keeping the key for the message."""

    def __init__(self) -> None:
        self._error = _unknown_key_class()

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        raise self._error(hostname, key)


def host_key_refusal(
    exc: BaseException, target: str, path: Path, host: str, port: int
) -> HostKeyError | None:
    """The :class:`HostKeyError` behind a connection error (netmiko wraps paramiko's), or None."""
    bad_host_key = _paramiko().BadHostKeyException
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = known_hosts_name(host, port)
        if isinstance(current, _UnknownKey):
            offered = HostKey.of(current.key)
            return HostKeyUnknown(
                f"{target}: host key {offered.key_type} {offered.fingerprint} of {name} is not pinned "
                f"in {path}; nothing was sent. Check the fingerprint, then pin it: ipsinfra trust {target}"
            )
        if isinstance(current, bad_host_key):
            offered, expected = HostKey.of(current.key), HostKey.of(current.expected_key)
            return HostKeyChanged(
                f"{target}: host key of {name} CHANGED: it offers {offered.key_type} {offered.fingerprint}, "
                f"{path} pins {expected.key_type} {expected.fingerprint}; nothing was sent (someone may "
                "be answering in the host's place)"
            )
        current = current.__cause__ or current.__context__
    return None
