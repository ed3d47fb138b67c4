"""One lock per target, across processes: a second operation is refused, not queued.

A destructive operation on a VDS (migrate, block, rename...) takes the VDS's
lock; a second one finds it held and raises :class:`ipsinfra.errors.Locked`
at once, naming who holds it. The lock is an ``flock`` on a file, so a
crashed holder releases it with its process.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ipsinfra.errors import Locked


def default_lock_dir() -> Path:
    env = os.environ.get("IPSINFRA_LOCK_DIR")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "ipsinfra" / "locks"


def _file_name(target: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", target) + ".lock"


@contextmanager
def hold(target: str, operation: str, *, lock_dir: Path | None = None) -> Iterator[None]:
    """Hold ``target``'s lock for ``operation``; raise Locked if someone else has it."""
    directory = lock_dir or default_lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / _file_name(target)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            who = holder or "another operation"
            raise Locked(f"{target}: busy: {who} holds it; try again later") from None
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            json.dumps({"operation": operation, "pid": os.getpid(), "host": socket.gethostname()}).encode(),
            0,
        )
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return ""
    if not data:
        return ""
    return f"{data.get('operation', '?')} (pid {data.get('pid', '?')} on {data.get('host', '?')})"
