"""Writing inventory files safely: an exclusive lock, temp files fsynced, ``os.replace``."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from ipsinfra.inventory.yamledit import WriteBackError

LOCK_NAME = ".ipsinfra-inventory.lock"
LOCK_TIMEOUT = 60.0


class Edit(Protocol):
    """One file's new text (``renamed_from``: the file it replaces, removed afterwards)."""

    @property
    def path(self) -> str: ...
    @property
    def after(self) -> str: ...
    @property
    def renamed_from(self) -> str | None: ...


@contextlib.contextmanager
def inventory_lock(base: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """An exclusive ``flock`` on ``<inventory>/.ipsinfra-inventory.lock``: one write-back at a time."""
    path = base / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise WriteBackError(f"{path}: cannot create the inventory lock: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise WriteBackError(
                        f"{path}: another write-back holds the lock ({timeout:.0f} s)"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def write_atomically(base: Path, edits: Sequence[Edit]) -> None:
    """Write every edit: all temp files first (fsynced), then ``os.replace`` each, then drop renamed files."""
    staged: list[tuple[Path, Path]] = []
    target = base
    try:
        for edit in edits:
            target = base / edit.path
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = 0o644
            source = base / (edit.renamed_from or edit.path)
            with contextlib.suppress(FileNotFoundError):
                mode = source.stat().st_mode & 0o777
            fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            staged.append((Path(tmp_name), target))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(edit.after)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, mode)
    except OSError as exc:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise WriteBackError(f"{target}: cannot be written: {exc.strerror or exc}") from None
    done: list[str] = []
    for tmp, target in staged:
        try:
            os.replace(tmp, target)
        except OSError as exc:
            for left, _ in staged:
                with contextlib.suppress(OSError):
                    left.unlink()
            already = f" (already replaced: {', '.join(done)})" if done else ""
            raise WriteBackError(f"{target}: cannot be replaced: {exc.strerror or exc}{already}") from None
        done.append(str(target.relative_to(base)))
    for edit in edits:
        if edit.renamed_from and edit.renamed_from != edit.path:
            with contextlib.suppress(FileNotFoundError):
                (base / edit.renamed_from).unlink()
    for folder in {t.parent for _, t in staged}:
        with contextlib.suppress(OSError):
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


__all__ = ["LOCK_NAME", "LOCK_TIMEOUT", "inventory_lock", "write_atomically"]
