"""Read the abuse mailbox: IMAP over TLS, a Maildir, an mbox file.

A source is written as one string:

* ``imaps://user@host[:port][/FOLDER]``: IMAP over implicit TLS (port 993 by
  default, folder ``INBOX``). The certificate is always verified (the system's
  CAs, or ``ca_file`` for a private CA) and the host name checked. The password
  comes from ``$IPSINFRA_IMAP_PASSWORD`` or a password file (mode 0600 or
  stricter), never from the URL, a command line or a log.
* ``maildir:PATH``: a Maildir (``new/``, ``cur/``, ``tmp/``).
* ``mbox:PATH``: an mbox file, read only.

Each message comes as a :class:`MailMessage`: its raw bytes (never more than
``max_bytes``; a larger one arrives without them and with ``problem`` set, so
it is a refused complaint, not a crash), the mailbox's own date (IMAP
INTERNALDATE, the Maildir file's mtime, the mbox ``From `` line's date) and an
id that stays the same from run to run.

What was processed is marked in the mailbox where the mailbox can hold a mark:

* IMAP: the keyword ``$IpsinfraDone`` (``$IpsinfraFailed`` for a message that
  cannot be read), optionally ``\\Seen`` too, and optionally a MOVE to a done
  folder. Only messages without either keyword are read.
* Maildir: moved from ``new/`` to ``cur/`` with the Seen flag ``S`` (``F``,
  flagged, too for a message that cannot be read), by a rename, never by
  rewriting the file. Messages in ``new/`` and unseen ones in ``cur/`` are read.
* mbox: no mark; the store (``ipsinfra.abuse.watch``) remembers what was processed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.parser
import email.policy
import hashlib
import imaplib
import mailbox
import os
import re
import ssl
import stat
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ipsinfra.abuse.intake import DEFAULT_LIMITS
from ipsinfra.errors import InvalidInput, IpsinfraError

__all__ = [
    "DONE_KEYWORD",
    "FAILED_KEYWORD",
    "PASSWORD_ENV",
    "MailMessage",
    "Mailbox",
    "MailboxError",
    "Source",
    "dedup_key",
    "open_mailbox",
    "parse_source",
    "read_password",
]

PASSWORD_ENV = "IPSINFRA_IMAP_PASSWORD"
DONE_KEYWORD = "$IpsinfraDone"
FAILED_KEYWORD = "$IpsinfraFailed"
IMAPS_PORT = 993
_FOLDER_RE = re.compile(r"^[\x20-\x7e]{1,200}$")
_USER_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
_INTERNALDATE_RE = re.compile(rb'INTERNALDATE "([^"]+)"')
_SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID_RE = re.compile(rb"UID (\d+)")
_MAILDIR_INFO = ":2,"


class MailboxError(IpsinfraError, ConnectionError):
    """The mailbox cannot be read: unreachable, a certificate not verified, the login or
    folder refused. The message names the source (never the password) and the reason."""


class Source(BaseModel):
    """Where complaints come from; ``str()`` is safe to print (no password can be in it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["imaps", "maildir", "mbox"]
    path: Path | None = None
    host: str | None = None
    port: int = IMAPS_PORT
    user: str | None = None
    folder: str = "INBOX"

    def __str__(self) -> str:
        if self.kind == "imaps":
            host = f"[{self.host}]" if self.host and ":" in self.host else self.host
            return f"imaps://{self.user}@{host}:{self.port}/{self.folder}"
        return f"{self.kind}:{self.path}"


def parse_source(text: str) -> Source:
    """``imaps://user@host:port/FOLDER``, ``maildir:PATH`` or ``mbox:PATH``.

    Raises:
        InvalidInput: anything else, a password in the URL (not echoed), a bad port or folder.
    """
    value = text.strip()
    for kind in ("maildir", "mbox"):
        if value.startswith(f"{kind}:"):
            rest = value[len(kind) + 1 :]
            if rest.startswith("//"):
                rest = rest[2:]
            if not rest:
                raise InvalidInput(f"source: value {text!r}: {kind}: needs a path")
            return Source.model_validate({"kind": kind, "path": Path(rest).expanduser()})
    if not value.lower().startswith("imaps://"):
        hint = " (plain imap:// would send the password in clear)" if value.startswith("imap://") else ""
        raise InvalidInput(
            f"source: value {text!r}: not imaps://user@host[:port][/FOLDER], maildir:PATH or mbox:PATH{hint}"
        )
    parts = urllib.parse.urlsplit(value)
    if parts.password is not None:
        shown = f"imaps://{parts.username or ''}:***@{parts.hostname or ''}"
        raise InvalidInput(
            f"source: value {shown!r}: a password does not belong in the URL (it would show in "
            f"process lists and logs); use ${PASSWORD_ENV} or --password-file"
        )
    if parts.query or parts.fragment:
        raise InvalidInput(f"source: value {text!r}: no ?query or #fragment in an imaps:// source")
    user = urllib.parse.unquote(parts.username or "")
    if not user or not _USER_RE.match(user):
        raise InvalidInput(f"source: value {text!r}: imaps:// needs a user (imaps://user@host/INBOX)")
    if not parts.hostname:
        raise InvalidInput(f"source: value {text!r}: imaps:// needs a host")
    try:
        port = parts.port or IMAPS_PORT
    except ValueError:
        raise InvalidInput(f"source: value {text!r}: the port is not a number from 1 to 65535") from None
    folder = urllib.parse.unquote(parts.path.lstrip("/")) or "INBOX"
    if not _FOLDER_RE.match(folder) or '"' in folder or "\\" in folder:
        raise InvalidInput(
            f"source: value {text!r}: folder {folder!r}: printable ASCII without quotes or backslashes only"
        )
    return Source(kind="imaps", host=parts.hostname, port=port, user=user, folder=folder)


def read_password(password_file: str | Path | None = None) -> str:
    """The IMAP password: from ``password_file`` (first line; the file must not be readable by
    group or others), else ``$IPSINFRA_IMAP_PASSWORD``. Registered with :mod:`ipsinfra.redact`.

    Raises:
        InvalidInput: neither is given, the file is unreadable, empty or too open.
    """
    from ipsinfra.redact import register

    if password_file is not None:
        path = Path(password_file).expanduser()
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise InvalidInput(f"password_file: value {str(path)!r}: cannot read: {reason}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InvalidInput(
                f"password_file: value {str(path)!r}: mode {stat.S_IMODE(mode):04o} lets others read it; "
                f"chmod 600 {path}"
            )
        password = text.splitlines()[0] if text.strip() else ""
        if not password:
            raise InvalidInput(f"password_file: value {str(path)!r}: empty")
    else:
        password = os.environ.get(PASSWORD_ENV, "")
        if not password:
            raise InvalidInput(
                f"password: value None: set ${PASSWORD_ENV} or give --password-file for an imaps:// source"
            )
    if any(c in password for c in "\r\n\0"):
        raise InvalidInput("password: a line break or NUL cannot be sent in an IMAP LOGIN")
    register(password)
    return password


class MailMessage(BaseModel):
    """One message as the mailbox holds it."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="stable across runs: the IMAP UID with UIDVALIDITY, the Maildir name, …")
    raw: bytes | None = Field(description="the message; None when it is past max_bytes or unreadable")
    size: int
    mailbox_date: dt.datetime | None = None
    problem: str | None = Field(default=None, description="why raw is None")
    ref: str = Field(default="", description="the mailbox's handle for marking it (UID, file name)")


def dedup_key(raw: bytes) -> tuple[str, str]:
    """``("message-id", <id>)`` from the header (angle brackets and spaces off), else
    ``("sha256", <hex of the bytes>)``: the identity a complaint is remembered by."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw[:262144])
        value = headers.get("Message-ID")
    except Exception:  # a header we cannot read: fall back to the bytes
        value = None
    mid = re.sub(r"\s+", "", str(value or "")).strip("<>")[:998]
    if mid:
        return "message-id", mid
    return "sha256", hashlib.sha256(raw).hexdigest()


class Mailbox:
    """A source being read. Use as a context manager; :meth:`messages` yields what is new."""

    can_mark = True

    def __init__(self, source: Source, *, max_bytes: int) -> None:
        self.source = source
        self.max_bytes = max_bytes

    def messages(self) -> Iterator[MailMessage]:
        raise NotImplementedError

    def mark_done(self, message: MailMessage) -> None:
        """Mark ``message`` processed (it is not read again)."""

    def mark_failed(self, message: MailMessage) -> None:
        """Mark ``message`` as one that could not be read (for a person; not as done)."""

    def close(self) -> None:
        return None

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _too_large(self, size: int) -> str:
        return f"{size} bytes: larger than the limit of {self.max_bytes} bytes (max_bytes)"


# --- IMAP ----------------------------------------------------------------------------------------
class ImapMailbox(Mailbox):
    def __init__(
        self,
        source: Source,
        *,
        password: str,
        ca_file: str | Path | None = None,
        done_folder: str | None = None,
        mark_seen: bool = False,
        read_only: bool = False,
        timeout: float = 30.0,
        max_bytes: int,
    ) -> None:
        super().__init__(source, max_bytes=max_bytes)
        self.done_folder = done_folder
        self.mark_seen = mark_seen
        self.read_only = read_only
        self.uidvalidity = ""
        self._moves: list[str] = []
        assert source.host is not None and source.user is not None
        where = str(source)
        try:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInput(
                f"ca_file: value {str(ca_file)!r}: not a readable CA certificate: {exc}"
            ) from None
        try:
            self._imap = imaplib.IMAP4_SSL(source.host, source.port, ssl_context=context, timeout=timeout)
        except ssl.SSLCertVerificationError as exc:
            raise MailboxError(
                f"{where}: certificate verify failed: {exc.verify_message} (the server's certificate "
                "is not signed by a CA we trust for it; --ca-file names a private CA)"
            ) from None
        except ssl.SSLError as exc:
            raise MailboxError(f"{where}: TLS failed: {exc.reason or exc}") from None
        except TimeoutError:
            raise MailboxError(f"{where}: unreachable: no answer within {timeout:g} s") from None
        except OSError as exc:
            raise MailboxError(f"{where}: unreachable: {exc.strerror or exc}") from None
        except imaplib.IMAP4.error as exc:
            raise MailboxError(f"{where}: not an IMAP server: {exc}") from None
        try:
            self._login(password)
            self._select()
        except BaseException:
            self.close()
            raise

    def _fail(self, what: str, exc: BaseException) -> MailboxError:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return MailboxError(f"{self.source}: {what}: {detail}")

    def _login(self, password: str) -> None:
        assert self.source.user is not None
        try:
            self._imap.login(self._imap._quote(self.source.user), password)
        except imaplib.IMAP4.error as exc:
            # The server's own words (e.g. [AUTHENTICATIONFAILED]); the password is never in them.
            raise self._fail("login refused", exc) from None
        except OSError as exc:
            raise self._fail("connection lost at login", exc) from None

    def _select(self) -> None:
        folder = f'"{self.source.folder}"'
        try:
            typ, data = self._imap.select(folder, readonly=self.read_only)
            if typ != "OK":
                raise MailboxError(f"{self.source}: folder refused: {_text(data)}")
            _, validity = self._imap.response("UIDVALIDITY")
            self.uidvalidity = _text(validity) or "0"
            if not self.read_only:
                _, permanent = self._imap.response("PERMANENTFLAGS")
                flags = _text(permanent)
                if "\\*" not in flags and DONE_KEYWORD not in flags:
                    raise MailboxError(
                        f"{self.source}: the server does not keep the keyword {DONE_KEYWORD} "
                        f"(PERMANENTFLAGS {flags or 'none'}); processed mail could not be marked"
                    )
        except imaplib.IMAP4.error as exc:
            raise self._fail("folder refused", exc) from None
        except OSError as exc:
            raise self._fail("connection lost", exc) from None

    def _uid(self, command: str, *args: str) -> list[object]:
        try:
            typ, data = self._imap.uid(command, *args)
        except imaplib.IMAP4.error as exc:
            raise self._fail(f"UID {command} failed", exc) from None
        except OSError as exc:
            raise self._fail(f"connection lost during UID {command}", exc) from None
        if typ != "OK":
            raise MailboxError(f"{self.source}: UID {command} refused: {_text(data)}")
        return list(data)

    def messages(self) -> Iterator[MailMessage]:
        found = self._uid("SEARCH", "UNKEYWORD", DONE_KEYWORD, "UNKEYWORD", FAILED_KEYWORD)
        uids = [u for chunk in found if isinstance(chunk, bytes) for u in chunk.decode().split()]
        for uid in uids:
            meta = self._uid("FETCH", uid, "(UID RFC822.SIZE INTERNALDATE)")
            head = b" ".join(x if isinstance(x, bytes) else b"" for x in meta)
            size_m = _SIZE_RE.search(head)
            size = int(size_m[1]) if size_m else 0
            when = _internaldate(head)
            mid = f"{self.source};UIDVALIDITY={self.uidvalidity}/;UID={uid}"
            if size > self.max_bytes:
                yield MailMessage(
                    id=mid, raw=None, size=size, mailbox_date=when, problem=self._too_large(size), ref=uid
                )
                continue
            body = self._uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((x[1] for x in body if isinstance(x, tuple) and len(x) == 2), None)
            if not isinstance(raw, bytes):
                yield MailMessage(
                    id=mid, raw=None, size=size, mailbox_date=when, problem="the server sent no body", ref=uid
                )
                continue
            if len(raw) > self.max_bytes:
                yield MailMessage(
                    id=mid,
                    raw=None,
                    size=len(raw),
                    mailbox_date=when,
                    problem=self._too_large(len(raw)),
                    ref=uid,
                )
                continue
            yield MailMessage(id=mid, raw=raw, size=len(raw), mailbox_date=when, ref=uid)

    def _store(self, uid: str, flags: str) -> None:
        self._uid("STORE", uid, "+FLAGS.SILENT", f"({flags})")

    def mark_done(self, message: MailMessage) -> None:
        self._store(message.ref, DONE_KEYWORD + (" \\Seen" if self.mark_seen else ""))
        if self.done_folder:
            self._move(message.ref, self.done_folder)

    def mark_failed(self, message: MailMessage) -> None:
        self._store(message.ref, FAILED_KEYWORD)

    def _move(self, uid: str, folder: str) -> None:
        quoted = f'"{folder}"'
        caps = {c.upper() for c in getattr(self._imap, "capabilities", ())}
        if "MOVE" in caps:
            self._uid("MOVE", uid, quoted)
            return
        self._uid("COPY", uid, quoted)
        self._store(uid, "\\Deleted")
        if "UIDPLUS" in caps:
            self._uid("EXPUNGE", uid)
        else:
            self._moves.append(uid)  # expunged at close: without UIDPLUS EXPUNGE takes every \Deleted

    def close(self) -> None:
        imap = getattr(self, "_imap", None)
        if imap is None:
            return
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            if self._moves:
                imap.expunge()
            if imap.state == "SELECTED":
                imap.close()
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            imap.logout()
        self._imap = None  # type: ignore[assignment]


def _text(data: object) -> str:
    if isinstance(data, list | tuple):
        return " ".join(_text(x) for x in data if x is not None)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return "" if data is None else str(data)


def _internaldate(head: bytes) -> dt.datetime | None:
    found = _INTERNALDATE_RE.search(head)
    if found is None:
        return None
    try:
        return dt.datetime.strptime(found[1].decode().strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def check_folder(folder: str, field: str = "done_folder") -> str:
    """A folder name we can quote safely (printable ASCII, no quotes or backslashes)."""
    if not _FOLDER_RE.match(folder) or '"' in folder or "\\" in folder:
        raise InvalidInput(f"{field}: value {folder!r}: printable ASCII without quotes or backslashes only")
    return folder


# --- Maildir -------------------------------------------------------------------------------------
class MaildirMailbox(Mailbox):
    def __init__(self, source: Source, *, max_bytes: int) -> None:
        super().__init__(source, max_bytes=max_bytes)
        assert source.path is not None
        self.root = source.path
        for sub in ("new", "cur"):
            if not (self.root / sub).is_dir():
                raise MailboxError(f"{source}: not a Maildir (no {sub}/ folder)")

    def messages(self) -> Iterator[MailMessage]:
        names = [("new", n) for n in _listdir(self.root / "new", self.source)]
        for name in _listdir(self.root / "cur", self.source):
            flags = name.partition(_MAILDIR_INFO)[2]
            if "S" not in flags:
                names.append(("cur", name))
        for sub, name in sorted(names, key=self._arrival):
            path = self.root / sub / name
            unique = name.partition(_MAILDIR_INFO)[0]
            mid = f"{self.source}#{unique}"
            try:
                info = path.stat()
                when = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC)
                if info.st_size > self.max_bytes:
                    yield MailMessage(
                        id=mid,
                        raw=None,
                        size=info.st_size,
                        mailbox_date=when,
                        problem=self._too_large(info.st_size),
                        ref=f"{sub}/{name}",
                    )
                    continue
                with path.open("rb") as fh:
                    raw = fh.read(self.max_bytes + 1)
            except FileNotFoundError:
                continue  # taken by someone else meanwhile
            except OSError as exc:
                yield MailMessage(
                    id=mid, raw=None, size=0, problem=f"cannot read: {exc.strerror}", ref=f"{sub}/{name}"
                )
                continue
            if len(raw) > self.max_bytes:
                problem = self._too_large(len(raw))
                yield MailMessage(
                    id=mid, raw=None, size=len(raw), mailbox_date=when, problem=problem, ref=f"{sub}/{name}"
                )
                continue
            yield MailMessage(id=mid, raw=raw, size=len(raw), mailbox_date=when, ref=f"{sub}/{name}")

    def _arrival(self, entry: tuple[str, str]) -> tuple[int, str]:
        """In the order the mail arrived (file time, then name), so the first copy is the one acted on."""
        try:
            return (os.stat(self.root / entry[0] / entry[1]).st_mtime_ns, entry[1])
        except OSError:
            return (0, entry[1])

    def _flag(self, message: MailMessage, add: str) -> None:
        sub, _, name = message.ref.partition("/")
        unique, _, flags = name.partition(_MAILDIR_INFO)
        new_flags = "".join(sorted(set(flags) | set(add)))
        target = self.root / "cur" / f"{unique}{_MAILDIR_INFO}{new_flags}"
        try:
            os.rename(self.root / sub / name, target)  # the Maildir way: a rename, never a rewrite
        except OSError as exc:
            raise MailboxError(f"{self.source}: cannot mark {name}: {exc.strerror}") from None

    def mark_done(self, message: MailMessage) -> None:
        self._flag(message, "S")

    def mark_failed(self, message: MailMessage) -> None:
        self._flag(message, "FS")


def _listdir(path: Path, source: Source) -> list[str]:
    try:
        return [e.name for e in os.scandir(path) if e.is_file() and not e.name.startswith(".")]
    except OSError as exc:
        raise MailboxError(f"{source}: cannot read {path}: {exc.strerror}") from None


# --- mbox ----------------------------------------------------------------------------------------
class MboxMailbox(Mailbox):
    can_mark = False

    def __init__(self, source: Source, *, max_bytes: int) -> None:
        super().__init__(source, max_bytes=max_bytes)
        assert source.path is not None
        if not source.path.is_file():
            raise MailboxError(f"{source}: no such file")
        try:
            self._box = mailbox.mbox(source.path, create=False)
            self._keys = self._box.keys()
        except (OSError, mailbox.Error) as exc:
            raise MailboxError(f"{source}: cannot read: {exc}") from None

    def messages(self) -> Iterator[MailMessage]:
        for key in self._keys:
            raw: bytes | None
            problem: str | None
            try:
                start, stop = self._box._toc[key]  # type: ignore[attr-defined]
                fh = self._box.get_file(key, from_=True)
                try:
                    from_line = fh.readline(1024)
                    body_size = stop - start - len(from_line)
                    if body_size > self.max_bytes:
                        raw, problem = None, self._too_large(body_size)
                    else:
                        raw, problem = fh.read(self.max_bytes + 1), None
                finally:
                    fh.close()
            except (OSError, KeyError, ValueError) as exc:
                yield MailMessage(id=f"{self.source}#{key}", raw=None, size=0, problem=f"cannot read: {exc}")
                continue
            when = _from_line_date(from_line)
            if raw is not None and len(raw) > self.max_bytes:
                problem = self._too_large(len(raw))
                raw = None
            ident = hashlib.sha256(raw if raw is not None else from_line + str(start).encode()).hexdigest()
            yield MailMessage(
                id=f"{self.source}#sha256:{ident[:16]}",
                raw=raw,
                size=body_size,
                mailbox_date=when,
                problem=problem,
                ref=str(key),
            )

    def close(self) -> None:
        box = getattr(self, "_box", None)
        if box is not None:
            box.close()


def _from_line_date(line: bytes) -> dt.datetime | None:
    """The date of ``From sender Tue Dec  1 12:00:00 2026`` (asctime, taken as UTC)."""
    words = line.decode("ascii", "replace").split()
    if len(words) < 7:
        return None
    text = " ".join(words[-5:])
    try:
        return dt.datetime.strptime(text, "%a %b %d %H:%M:%S %Y").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


# -------------------------------------------------------------------------------------------------
def open_mailbox(
    source: Source | str,
    *,
    password: str | None = None,
    password_file: str | Path | None = None,
    ca_file: str | Path | None = None,
    done_folder: str | None = None,
    mark_seen: bool = False,
    read_only: bool = False,
    timeout: float = 30.0,
    max_bytes: int = DEFAULT_LIMITS.max_bytes,
) -> Mailbox:
    """Open ``source`` for reading (and marking, unless ``read_only``).

    Raises:
        InvalidInput: a bad source, password or CA file.
        MailboxError: the mailbox cannot be reached, verified, logged into or read.
    """
    src = parse_source(source) if isinstance(source, str) else source
    if src.kind == "maildir":
        return MaildirMailbox(src, max_bytes=max_bytes)
    if src.kind == "mbox":
        return MboxMailbox(src, max_bytes=max_bytes)
    if done_folder is not None:
        check_folder(done_folder)
    secret = password if password is not None else read_password(password_file)
    return ImapMailbox(
        src,
        password=secret,
        ca_file=ca_file,
        done_folder=done_folder,
        mark_seen=mark_seen,
        read_only=read_only,
        timeout=timeout,
        max_bytes=max_bytes,
    )
