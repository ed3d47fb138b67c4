"""Writing inventory files safely: an exclusive lock, and a change of several files all or nothing.

:func:`write_atomically` is a small transaction under :func:`inventory_lock`:

0. every file must still read as the change was computed from (else nothing is written:
   another process renamed or edited it meanwhile);
1. every new text goes to a temp file next to its target, fsynced;
2. every file it replaces or removes gets a backup (a hard link, else a copy), fsynced;
3. the intent, ``<inventory>/.ipsinfra-inventory.pending`` (JSON: each target, its
   temp file, its backup, the sha256 of its old and new text), is written and fsynced;
4. the ``os.replace`` steps and removals run, the folders are fsynced;
5. removing the intent commits the change; the backups are then dropped.

A failure in step 4 rolls back at once (the backups go back in place). A crash
(SIGKILL, power loss) between steps 3 and 5 leaves the intent behind: the next
write-back, or the next :func:`ipsinfra.inventory.load`, rolls it back under the
lock (:func:`recover`) and logs one warning, so what anyone reads is either wholly
as before or wholly as after; the next write-back also drops the temp files and
backups a crash before step 3 or after step 5 left (:func:`settle`).

Back, not forward: the interrupted run's result never reached its caller nor the
journal, so the inventory goes back to the state every earlier line of the journal
describes, and the re-run (or ``ipsinfra inventory sync``) writes the change again,
this time journalled (the rollback itself is a journal line ``inventory.rollback``
when a write-back does it). A file changed
by hand since the intent was written is never overwritten: recovery refuses,
naming it and its backup.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from ipsinfra.inventory.yamledit import WriteBackError

LOCK_NAME = ".ipsinfra-inventory.lock"
PENDING_NAME = ".ipsinfra-inventory.pending"
BACKUP_SUFFIX = ".ipsinfra-old"  # .<name>.<random>.ipsinfra-old: a file's text before a write-back
TEMP_SUFFIX = ".ipsinfra-new"  # .<name>.<random>.ipsinfra-new: its text after
LOCK_TIMEOUT = 60.0

log = logging.getLogger(__name__)
_held: dict[str, int] = {}  # inventory -> the thread holding its lock here (load() inside a write-back)
_held_guard = threading.Lock()


class Edit(Protocol):
    """One file's new text (``renamed_from``: the file it replaces, removed afterwards).

    ``before``: the text the change was computed from (None: the file was absent).
    """

    @property
    def path(self) -> str: ...
    @property
    def before(self) -> str | None: ...
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
    key = str(base.resolve())
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
        with _held_guard:
            _held[key] = threading.get_ident()
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(key, None)
    finally:
        os.close(fd)


# --- small durable steps ---------------------------------------------------------------
def _sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _temp_beside(target: Path, data: bytes, mode: int) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(name, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def _backup(path: Path) -> Path:
    """A second name for ``path``'s current text, in its folder: a hard link, else a fsynced copy."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=BACKUP_SUFFIX, dir=path.parent)
    os.close(fd)
    os.unlink(name)
    try:
        os.link(path, name)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        shutil.copy2(path, name)
        with open(name, "rb") as fh:
            os.fsync(fh.fileno())
    return Path(name)


def _sweep(base: Path) -> None:
    """Drop the temp files and backups a crash left before (or after) its intent (under the lock)."""
    for folder, dirs, names in os.walk(base):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            if name.startswith(".") and name.endswith((TEMP_SUFFIX, BACKUP_SUFFIX)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))


def _unlink_quietly(paths: Sequence[Path]) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()


# --- the transaction ---------------------------------------------------------------------
def write_atomically(base: Path, edits: Sequence[Edit]) -> None:
    """Write every edit, all or nothing (see the module's docstring). Call it under :func:`inventory_lock`.

    Raises WriteBackError naming the file when it cannot; the inventory is then as before.
    """
    settle(base)
    for edit in edits:  # nobody changed, renamed or removed a file since the change was computed
        source = base / (edit.renamed_from or edit.path)
        try:
            now = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            now = None
        except (OSError, UnicodeDecodeError) as exc:
            raise WriteBackError(f"{source}: cannot be read: {exc}") from None
        if now != edit.before:
            what = "is gone" if now is None else ("appeared" if edit.before is None else "changed")
            raise WriteBackError(
                f"{source}: {what} since this write-back read it (renamed or edited by another "
                "process?); nothing written"
            )
        if edit.renamed_from and edit.renamed_from != edit.path and (base / edit.path).exists():
            raise WriteBackError(f"{base / edit.path}: appeared since this write-back read the inventory")
    staged: list[dict[str, Any]] = []
    scratch: list[Path] = []  # every temp file and backup made so far
    target = base
    try:
        for edit in edits:
            target = base / edit.path
            target.parent.mkdir(parents=True, exist_ok=True)
            source = base / (edit.renamed_from or edit.path)
            mode = 0o644
            with contextlib.suppress(FileNotFoundError):
                mode = source.stat().st_mode & 0o777
            new = edit.after.encode("utf-8")
            tmp = _temp_beside(target, new, mode)
            scratch.append(tmp)
            old = _read(target)
            entry: dict[str, Any] = {
                "path": edit.path,
                "new": str(tmp.relative_to(base)),
                "new_sha256": _sha(new),
                "old": None,
                "old_sha256": _sha(old),
            }
            if old is not None:
                bak = _backup(target)
                scratch.append(bak)
                entry["old"] = str(bak.relative_to(base))
            staged.append(entry)
        removed: list[dict[str, Any]] = []
        for edit in edits:
            if edit.renamed_from and edit.renamed_from != edit.path:
                target = base / edit.renamed_from
                old = _read(target)
                if old is None:
                    continue
                bak = _backup(target)
                scratch.append(bak)
                removed.append(
                    {"path": edit.renamed_from, "old": str(bak.relative_to(base)), "old_sha256": _sha(old)}
                )
        folders = {p.parent for p in scratch}
        for folder in folders:
            _fsync_dir(folder)
        intent = {
            "version": 1,
            "pid": os.getpid(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": staged,
            "remove": removed,
        }
        target = base / PENDING_NAME
        pending_tmp = _temp_beside(target, json.dumps(intent, indent=1).encode(), 0o644)
        scratch.append(pending_tmp)
        os.replace(pending_tmp, target)
        scratch.remove(pending_tmp)
        _fsync_dir(base)
    except OSError as exc:
        _unlink_quietly(scratch)
        raise WriteBackError(f"{target}: cannot be written: {exc.strerror or exc}") from None

    done: list[str] = []
    try:
        for entry in staged:
            target = base / entry["path"]
            os.replace(base / entry["new"], target)
            done.append(entry["path"])
        for entry in removed:
            target = base / entry["path"]
            target.unlink(missing_ok=True)
        for folder in {(base / e["path"]).parent for e in [*staged, *removed]}:
            _fsync_dir(folder)
    except OSError as exc:
        why = f"{target}: cannot be replaced: {exc.strerror or exc}"
        try:
            _roll_back(base, _steps(base, intent))
        except (OSError, WriteBackError) as again:
            raise WriteBackError(
                f"{why}; rolling back failed too ({again}): {base / PENDING_NAME} lists every file "
                "and its backup; the next write-back or load retries"
            ) from None
        rolled = f" (rolled back: {', '.join(done)})" if done else ""
        raise WriteBackError(f"{why}; nothing changed{rolled}") from None
    try:
        (base / PENDING_NAME).unlink()  # the commit
    except OSError as exc:
        with contextlib.suppress(OSError, WriteBackError):
            _roll_back(base, _steps(base, intent))
        raise WriteBackError(f"{base / PENDING_NAME}: cannot be removed: {exc.strerror or exc}") from None
    _fsync_dir(base)
    _unlink_quietly([base / e["old"] for e in [*staged, *removed] if e["old"]])


# --- recovery ----------------------------------------------------------------------------
def settle(base: Path) -> list[str]:
    """Under the lock: roll back an interrupted write-back (:func:`recover`), drop what a crash left.

    Returns the files put back.
    """
    put_back = recover(base, locked=True)
    _sweep(base)
    return put_back


def recover(base: Path, *, locked: bool = False, timeout: float = LOCK_TIMEOUT) -> list[str]:
    """Roll back a write-back that was interrupted in ``base``; returns the files put back.

    Takes the lock unless ``locked`` (or this process holds it already). Raises
    WriteBackError when it cannot (a file changed by hand since, an unwritable folder),
    leaving the intent in place and naming what to do.
    """
    path = base / PENDING_NAME
    if not path.exists():
        return []
    if not locked and _held.get(str(base.resolve())) != threading.get_ident():
        try:
            with inventory_lock(base, timeout):
                return recover(base, locked=True)
        except WriteBackError as exc:
            if "cannot create the inventory lock" not in str(exc) and "holds the lock" not in str(exc):
                raise
            raise WriteBackError(
                f"{path}: a write-back was interrupted and left the inventory half-changed; "
                f"it cannot be rolled back now: {exc}"
            ) from None
    try:
        intent = json.loads(path.read_text(encoding="utf-8"))
        steps = _steps(base, intent)
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WriteBackError(
            f"{path}: an interrupted write-back's record cannot be read ({exc}); compare the files "
            f"with their '.*{BACKUP_SUFFIX}' backups by hand, then remove {path.name}"
        ) from None
    try:
        put_back = _roll_back(base, steps)
    except OSError as exc:
        raise WriteBackError(
            f"{exc.filename or base}: cannot roll back an interrupted write-back: {exc.strerror or exc}; "
            f"{path} lists every file and its backup"
        ) from None
    log.warning(
        "%s: rolled back a write-back interrupted at %s (pid %s); as before it: %s",
        base,
        intent.get("started", "?"),
        intent.get("pid", "?"),
        ", ".join(put_back) or "every file (none had changed yet)",
    )
    return put_back


Step = tuple[str, str | None, str | None, str | None, str | None]  # path, new, old, old_sha256, new_sha256


def _steps(base: Path, intent: dict[str, Any]) -> list[Step]:
    """The intent's files as steps; every path must lie inside ``base``."""
    steps: list[Step] = [
        (e["path"], e["new"], e["old"], e["old_sha256"], e["new_sha256"]) for e in intent["files"]
    ] + [(e["path"], None, e["old"], e["old_sha256"], None) for e in intent["remove"]]
    for step in steps:
        for rel in step[:3]:
            if rel is None:
                continue
            if not isinstance(rel, str) or os.path.isabs(rel) or ".." in Path(rel).parts:
                raise ValueError(f"path {rel!r} is outside the inventory")
    return steps


def _roll_back(base: Path, steps: Sequence[Step]) -> list[str]:
    """Put every file back as it was before the write-back (idempotent), then drop the intent."""
    # First prove every file is ours to put back: as before, as the write-back made it, or absent.
    for rel, _new, old, old_sha, new_sha in steps:
        target = base / rel
        backup_there = old is not None and (base / old).exists()
        if new_sha is None:  # a file the write-back removes (the old name of a renamed one)
            allowed = {old_sha, None} if backup_there else {old_sha}
        elif old is None:  # a file the write-back creates
            allowed = {new_sha, None}
        else:
            allowed = {old_sha, new_sha} if backup_there else {old_sha}
        if _sha(_read(target)) not in allowed:
            keep = f"; its text before the write-back is in {base / old}" if backup_there and old else ""
            raise WriteBackError(
                f"{target}: changed by hand since an interrupted write-back; not rolled back{keep}. "
                f"Settle it by hand, then remove {base / PENDING_NAME}"
            )
    put_back: list[str] = []
    for rel, new, old, old_sha, _new_sha in steps:
        target = base / rel
        if old is not None and (base / old).exists():
            if _sha(_read(target)) == old_sha:
                # Not replaced yet. (A rename onto another hard link of the same file does
                # nothing, so the backup link is dropped rather than renamed back.)
                (base / old).unlink()
            else:
                os.replace(base / old, target)
                put_back.append(rel)
        elif old is None and target.exists():
            target.unlink()  # new in the write-back: not there before it
            put_back.append(rel)
        if new is not None:
            (base / new).unlink(missing_ok=True)
    for folder in {(base / s[0]).parent for s in steps}:
        _fsync_dir(folder)
    (base / PENDING_NAME).unlink(missing_ok=True)
    _fsync_dir(base)
    return sorted(set(put_back))


__all__ = [
    "BACKUP_SUFFIX",
    "LOCK_NAME",
    "LOCK_TIMEOUT",
    "PENDING_NAME",
    "TEMP_SUFFIX",
    "inventory_lock",
    "recover",
    "settle",
    "write_atomically",
]
