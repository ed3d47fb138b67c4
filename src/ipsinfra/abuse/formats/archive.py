"""Attachments as files: plain, ``.gz`` or ``.zip``, decompressed within a budget.

A zip bomb is a refusal, never a memory blow-up: members are counted before one
is read, every member is read in chunks, and reading stops (with
:class:`~ipsinfra.abuse.formats.base.FormatRejected`) as soon as the total
uncompressed size or one member's compression ratio passes its limit. The
sizes a zip's directory claims are not trusted; only bytes actually read count.

Example::

    >>> import gzip
    >>> budget = Budget(max_bytes=1 << 20, max_ratio=100, max_members=10)
    >>> expand("r.csv.gz", gzip.compress(b"ip\\n192.0.2.7\\n"), budget)
    [('r.csv', b'ip\\n192.0.2.7\\n')]
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass, field

from ipsinfra.abuse.formats.base import FormatRejected

__all__ = ["Budget", "expand"]

_CHUNK = 64 * 1024
# The ratio is checked once this much came out: tiny members compress oddly well.
_RATIO_FLOOR = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Budget:
    """What the attachments of ONE complaint may expand to, all together."""

    max_bytes: int
    max_ratio: int
    max_members: int
    used_bytes: int = 0
    members: int = field(default=0)

    def take(self, name: str, produced: int) -> None:
        self.used_bytes += produced
        if self.used_bytes > self.max_bytes:
            raise FormatRejected(
                f"attachment {name!r}: value >{self.max_bytes} bytes: the attachments expand past the "
                f"limit of {self.max_bytes} bytes (max_attachment_bytes)",
                "large",
            )

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise FormatRejected(
                f"attachment {name!r}: value members>{self.max_members}: more files in the attachments "
                f"than the limit of {self.max_members} (max_archive_members)",
                "complex",
            )

    def ratio(self, name: str, produced: int, compressed: int) -> None:
        if produced > _RATIO_FLOOR and produced > self.max_ratio * max(compressed, 1):
            raise FormatRejected(
                f"attachment {name!r}: value ratio>{self.max_ratio}: compressed {compressed} bytes expand "
                f"past {self.max_ratio} times that (max_compression_ratio); a zip bomb is refused",
                "large",
            )


def expand(name: str, data: bytes, budget: Budget) -> list[tuple[str, bytes]]:
    """The files in one attachment: ``(name, bytes)``; a plain file is itself.

    ``.zip`` members that are zips or gzips themselves are not opened again (one level).

    Raises:
        FormatRejected: past the budget, or an archive that cannot be read.
    """
    lower = name.lower()
    if lower.endswith(".zip") or (data[:4] == _ZIP_MAGIC and not lower.endswith(".csv")):
        return _unzip(name, data, budget)
    if lower.endswith((".gz", ".gzip")) or data[:2] == _GZIP_MAGIC:
        budget.member(name)
        inner = name[: name.lower().rfind(".")] if lower.endswith((".gz", ".gzip")) else name
        return [(inner, _gunzip(name, data, budget))]
    budget.member(name)
    budget.take(name, len(data))
    return [(name, data)]


def _gunzip(name: str, data: bytes, budget: Budget) -> bytes:
    out = bytearray()
    pending = data
    consumed_total = 0
    try:
        while pending:
            inflater = zlib.decompressobj(wbits=31)  # gzip framing; one member at a time
            chunk_in = pending
            start_len = len(chunk_in)
            while True:
                piece = inflater.decompress(chunk_in, _CHUNK)
                budget.take(name, len(piece))
                out += piece
                chunk_in = inflater.unconsumed_tail
                budget.ratio(name, len(out), consumed_total + start_len - len(chunk_in))
                if inflater.eof or (not chunk_in and not piece):
                    break
            if not inflater.eof:
                raise FormatRejected(f"attachment {name!r}: value truncated: the gzip data ends early")
            consumed_total += start_len - len(inflater.unused_data)
            pending = inflater.unused_data
            if pending.strip(b"\x00"):
                budget.member(name)  # a concatenated gzip member counts as one more file
            else:
                pending = b""
    except zlib.error as exc:
        raise FormatRejected(f"attachment {name!r}: value {str(exc)[:80]!r}: not readable gzip") from None
    return bytes(out)


def _unzip(name: str, data: bytes, budget: Budget) -> list[tuple[str, bytes]]:
    files: list[tuple[str, bytes]] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            for _ in infos:
                budget.member(name)  # counted before any member is read
            for info in infos:
                member = f"{name}:{info.filename[:200]}"
                out = bytearray()
                with archive.open(info) as fh:
                    while True:
                        piece = fh.read(_CHUNK)
                        if not piece:
                            break
                        budget.take(member, len(piece))
                        out += piece
                        budget.ratio(member, len(out), info.compress_size)
                files.append((info.filename, bytes(out)))
    except FormatRejected:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
        ValueError,
        OSError,
    ) as exc:
        detail = f"{type(exc).__name__}: {exc}"[:120]
        raise FormatRejected(f"attachment {name!r}: value {detail!r}: not a readable zip") from None
    return files
