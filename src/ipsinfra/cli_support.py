"""What every ``ipsinfra`` command shares: one JSON style, VDS names, progress, old flag names.

The sub-command modules (:mod:`ipsinfra.resize_cli`, :mod:`ipsinfra.network.cli`,
:mod:`ipsinfra.hostkeys_cli`, :mod:`ipsinfra.abuse.cli`) import this, never
:mod:`ipsinfra.cli` (which imports them).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ipsinfra import naming
from ipsinfra.errors import InvalidInput, InvalidName

__all__ = [
    "VDS_NAME_HELP",
    "check_password_file",
    "counted_progress",
    "dump_json",
    "progress",
    "settings",
    "vds_name",
    "warn_deprecated",
    "write_password_file",
]

VDS_NAME_HELP = "The VDS: its house name 'VPS1234(34.56)' or the DNS-safe twin VPS1234-34-56."


@dataclass
class Settings:
    """Process-wide CLI settings the root options set (``ipsinfra --quiet ...``)."""

    quiet: bool = False


settings = Settings()


def _stderr() -> Console:
    # Built per use: tests and callers swap sys.stderr.
    return Console(file=sys.stderr, soft_wrap=True)


def dump_json(data: Any, *, sort_keys: bool = False) -> str:
    """The one JSON style of the CLI: indented, UTF-8 as is (``§``, not ``\\u00a7``)."""
    return json.dumps(data, default=str, ensure_ascii=False, indent=2, sort_keys=sort_keys)


def vds_name(value: str) -> str:
    """The house name of a VDS argument given as the house name or its DNS-safe twin.

    >>> vds_name("VPS1234-34-56")
    'VPS1234(34.56)'

    Anything else is :class:`InvalidName` naming the value and both accepted forms.
    """
    try:
        naming.parse_vps_name(value)
        return value
    except InvalidName as exc:
        reason = str(exc).removeprefix(f"name: value {value!r}: ")
    try:
        return naming.from_pve_safe_name(value)
    except InvalidName:
        raise InvalidName(
            f"name: value {value!r}: neither a house name nor its DNS-safe twin "
            f"(VPS1234(34.56) or VPS1234-34-56); {reason}"
        ) from None


def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr for a deprecated flag that still works."""
    print(f"ipsinfra: warning: {old} is deprecated; use {new}", file=sys.stderr)


def _bar(quiet: bool, *counts: TextColumn) -> Progress | None:
    """A transient spinner on stderr (``counts`` between text and time), or ``None`` when not shown."""
    console = _stderr()
    if quiet or settings.quiet or not console.is_terminal:
        return None
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        *counts,
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@contextlib.contextmanager
def progress(message: str, *, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner with the elapsed time on stderr while ``message`` runs; yields ``update(text)``.

    Shown only when stderr is a terminal and neither ``--quiet`` (root or
    command) is given: pipes, CI logs and ``--json`` consumers see nothing.
    stdout is never touched.
    """
    bar = _bar(quiet)
    if bar is None:
        yield lambda _text: None
        return
    task = bar.add_task(message, total=None)
    with bar:
        yield lambda text: bar.update(task, description=text)


@contextlib.contextmanager
def counted_progress(message: str, total: int, *, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """Like :func:`progress` with a bar over ``total`` items; each ``advance(text)`` is one item done."""
    bar = _bar(quiet, TextColumn("{task.completed}/{task.total}"))
    if bar is None:
        yield lambda _text: None
        return
    task = bar.add_task(message, total=total)
    with bar:
        yield lambda text: bar.update(task, advance=1, description=f"{message}: {text}")


def check_password_file(path: Path) -> None:
    """Refuse, before anything is created, a ``--password-file`` that could not take the password.

    It must not exist, or be an empty regular file (``mktemp``): a password
    already written is never overwritten. Raises InvalidInput naming the path.
    """
    if not path.parent.is_dir():
        raise InvalidInput(f"password_file: value {str(path)!r}: folder {str(path.parent)!r} does not exist")
    if path.is_symlink() or (path.exists() and (not path.is_file() or path.stat().st_size > 0)):
        raise InvalidInput(
            f"password_file: value {str(path)!r}: exists and is not an empty file; "
            "refusing to overwrite a password"
        )


def write_password_file(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path``, mode 0600, never over a non-empty file nor through a symlink."""
    flags = os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = os.open(path, flags)  # the empty file check_password_file accepted
    try:
        if os.fstat(fd).st_size > 0:
            raise InvalidInput(
                f"password_file: value {str(path)!r}: written meanwhile; refusing to overwrite a password"
            )
        os.fchmod(fd, 0o600)
        os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)
