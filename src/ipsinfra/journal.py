"""The append-only action journal (§11.6: logs are never erased or rewritten).

Every action ipsinfra takes (or plans, or refuses) is one line, hash-chained to
the line before it so an edited, removed or reordered line shows in
:meth:`Journal.verify`. SQLAlchemy Core keeps it portable: a SQLite file by
default, PostgreSQL (``postgresql+psycopg://user@host/db``; psycopg 3) or
anything SQLAlchemy speaks, by URL. A database password never sits in an
option someone logs: it comes with the URL from the environment
(``$IPSINFRA_JOURNAL``), from a file (``password_file``,
``$IPSINFRA_JOURNAL_PASSWORD_FILE``) or from libpq's own ``$PGPASSWORD`` /
``~/.pgpass``; every message shows the URL without it (:func:`safe_url`).

Secrets never enter: ``before``, ``after`` and ``detail`` are redacted before
they are hashed and written.

The chain alone cannot show a removed tail, an emptied table or a line edited
with every later hash recomputed. Two defences, usable together:

* an **anchor**: :meth:`Journal.head` gives ``SEQ:HASH``; kept elsewhere (a
  ticket, a log shipper), ``verify(expect=...)`` then catches all three;
* a **key** (HMAC-SHA256, ``IPSINFRA_JOURNAL_KEY`` or a file named by
  ``IPSINFRA_JOURNAL_KEY_FILE``): every line written with it carries a MAC of
  its canonical form, which someone who can only write the database cannot
  forge.

The key/value state (boot ids, outages, cancellations) is covered by the same
chain: every state write is also a ``state.set`` line, and its state row names
that line's seq, so ``verify`` checks the state table against the chain.

    >>> with Journal(tmp_path / "j.sqlite3") as j:  # doctest: +SKIP
    ...     j.record("vds.stop", "kvm1/VPS1234(34.56)", before={"state": "running"})
    JournalEntry(seq=1, action='vds.stop', result='ok', ...)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import getpass
import hashlib
import hmac
import json
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ipsinfra.errors import InvalidInput, JournalError, NotFound

GENESIS_HASH = "0" * 64
REDACTED = "***"
RESULTS = ("ok", "failed", "refused", "planned")
Result = Literal["ok", "failed", "refused", "planned"]
SECRET_KEY_RE = re.compile(r"pass|secret|token|key|cipassword", re.IGNORECASE)
# Attempts at one append when another writer took the same seq first. SQLite
# serialises writers with BEGIN IMMEDIATE, PostgreSQL with a transaction-level
# advisory lock (_lock_chain); only other backends rely on these retries.
_APPEND_ATTEMPTS = 20
# The advisory lock every PostgreSQL writer of the chain holds until its commit:
# one 64-bit id, the same in every process and release.
_PG_CHAIN_LOCK = int.from_bytes(hashlib.sha256(b"ipsinfra.journal chain").digest()[:8], "big", signed=True)
# Columns PostgreSQL bounds (SQLite does not): refused alike on both backends.
_MAX_NAME = 255
PASSWORD_FILE_ENV = "IPSINFRA_JOURNAL_PASSWORD_FILE"
# scheme://user:PASSWORD@ in a string SQLAlchemy cannot parse: masked up to the last @.
_USERINFO_RE = re.compile(r"^([^/?#@]*://[^/:@]*:).*@")
KEY_ENV = "IPSINFRA_JOURNAL_KEY"
KEY_FILE_ENV = "IPSINFRA_JOURNAL_KEY_FILE"
MIN_KEY_BYTES = 16
# The action of the line every state write adds to the chain (hidden from
# :meth:`Journal.entries` unless asked for), and of the line that records the
# state rows written before the state was chained.
STATE_ACTION = "state.set"
MIGRATE_ACTION = "journal.migrate"
_ANCHOR_RE = re.compile(r"(\d{1,18}):([0-9a-f]{64})")

_metadata = sa.MetaData()

journal_table = sa.Table(
    "journal",
    _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(255), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    # JSON as canonical text, not a JSON column: a JSONB round trip reorders keys.
    sa.Column("before", sa.Text, nullable=True),
    sa.Column("after", sa.Text, nullable=True),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    # HMAC-SHA256 of the hashed form, when written with a key. Nullable and added
    # by ALTER TABLE on older journals: no existing line is ever rewritten (§11.6).
    sa.Column("mac", sa.String(64), nullable=True),
)
sa.Index("ix_journal_target", journal_table.c.target)
sa.Index("ix_journal_action", journal_table.c.action)

# Key/value state (e.g. the last boot id per node). A new value is a new row:
# history is never overwritten or deleted. Each row names (``seq``) the
# ``state.set`` journal line written in the same transaction, so the chain covers
# it; rows from before that column existed have NULL there and are covered by
# the digest in the ``journal.migrate`` line the migration wrote.
state_table = sa.Table(
    "journal_state",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(255), nullable=False, index=True),
    sa.Column("ts", sa.String(40), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=True),
)


class JournalNotFound(JournalError, NotFound):
    """The journal to read does not exist (nothing is created by reading it)."""


class JournalUnreadable(JournalError, InvalidInput):
    """The journal cannot be read as a journal: not a database, no journal table, a malformed line."""


class _FromEnv(enum.Enum):
    FROM_ENV = "env"


#: ``Journal(key=FROM_ENV)`` (the default): the key from the environment, if any.
FROM_ENV = _FromEnv.FROM_ENV


class Anchor(BaseModel):
    """A point of the chain kept outside the database: ``SEQ:HASH`` (seq 0 is the empty journal)."""

    model_config = ConfigDict(frozen=True)

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def parse_anchor(text: str) -> Anchor:
    """``"12:ab…"`` -> :class:`Anchor`; anything else is :class:`InvalidInput`.

    >>> parse_anchor("0:" + GENESIS_HASH).seq
    0
    """
    match = _ANCHOR_RE.fullmatch(text.strip())
    if match is None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InvalidInput(
            f"journal.expect_head: value {shown!r}: must be SEQ:HASH, 64 lower-case hex digits "
            "(what `ipsinfra journal head` printed)"
        )
    anchor = Anchor(seq=int(match[1]), hash=match[2])
    if anchor.seq == 0 and anchor.hash != GENESIS_HASH:
        raise InvalidInput(
            f"journal.expect_head: value {text!r}: seq 0 is the empty journal, hash {GENESIS_HASH}"
        )
    return anchor


def load_key(key_file: str | Path | None = None) -> bytes | None:
    """The HMAC key: ``key_file``, else the file named by ``$IPSINFRA_JOURNAL_KEY_FILE``,
    else ``$IPSINFRA_JOURNAL_KEY``; None when none is set. Never from a command line value.

    A file's trailing newline is not part of the key. Shorter than 16 bytes is refused.
    """
    source: str
    if key_file is None and os.environ.get(KEY_FILE_ENV):
        key_file = os.environ[KEY_FILE_ENV]
    if key_file is not None:
        source = f"key file {str(key_file)!r}"
        try:
            key = Path(key_file).expanduser().read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise InvalidInput(
                f"journal.key_file: value {str(key_file)!r}: cannot read: {exc.strerror}"
            ) from None
    elif os.environ.get(KEY_ENV):
        source = f"${KEY_ENV}"
        key = os.environ[KEY_ENV].encode("utf-8")
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        # The message never shows the key.
        raise InvalidInput(f"journal.key: {source}: shorter than {MIN_KEY_BYTES} bytes")
    return key


class JournalEntry(BaseModel):
    """One line of the journal, as written (already redacted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    ts: dt.datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    result: Result
    detail: str = ""
    prev_hash: str
    hash: str
    mac: str | None = None


class VerifyReport(BaseModel):
    """What :meth:`Journal.verify` found. ``problems`` name the seq of each bad line.

    ``head`` is the last line as stored (an anchor for next time once ``ok``);
    ``macs_checked`` counts lines whose MAC matched the key; ``notes`` say what
    was not checked and why (lines from before the key, no key given).
    """

    model_config = ConfigDict(frozen=True)

    ok: bool
    checked: int
    problems: list[str]
    head: Anchor = Anchor(seq=0, hash=GENESIS_HASH)
    macs_checked: int = 0
    state_rows_checked: int = 0
    notes: list[str] = []

    def raise_on_error(self) -> None:
        """Raise :class:`ipsinfra.errors.JournalTampered` when the chain does not verify."""
        from ipsinfra.errors import JournalTampered

        if not self.ok:
            raise JournalTampered("; ".join(self.problems))


def default_journal_url(*, create: bool = True) -> str:
    """``$IPSINFRA_JOURNAL`` or ``~/.local/state/ipsinfra/journal.sqlite3`` (as a URL).

    ``create=False`` (readers) does not make the parent directory.
    """
    env = os.environ.get("IPSINFRA_JOURNAL")
    if env:
        return _to_url(env, create=create)
    return _to_url(Path.home() / ".local" / "state" / "ipsinfra" / "journal.sqlite3", create=create)


def default_actor() -> str:
    """``user@host`` of whoever runs this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _to_url(url: str | Path, *, create: bool = True) -> str:
    if isinstance(url, Path) or "://" not in url:
        path = Path(url).expanduser().resolve()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return url


def safe_url(url: str | sa.URL) -> str:
    """``url`` as every message shows it: the password (in the user part or as
    ``?password=``) masked, also in a string SQLAlchemy cannot parse.

    >>> safe_url("postgresql+psycopg://ipsinfra:s3cret@db1/journal")
    'postgresql+psycopg://ipsinfra:***@db1/journal'
    """
    try:
        parsed = url if isinstance(url, sa.URL) else sa.make_url(url)
    except (SQLAlchemyError, ValueError):
        return _USERINFO_RE.sub(r"\1***@", str(url))
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": REDACTED})
    return parsed.render_as_string(hide_password=True)


def url_secrets(url: str | None) -> list[str]:
    """The password a journal URL carries, as given and decoded (empty: none).

    The Ansible modules refuse such a URL and mask these strings in what they return.
    """
    if not url:
        return []
    found: list[str] = []
    raw = _USERINFO_RE.match(url)
    if raw is not None:
        found.append(url[len(raw[1]) : raw.end() - 1])
    try:
        parsed = sa.make_url(url)
    except (SQLAlchemyError, ValueError):
        return [s for s in found if s]
    found.append(parsed.password or "")
    query_password = parsed.query.get("password")
    found.extend([query_password] if isinstance(query_password, str) else list(query_password or ()))
    return sorted({s for s in found if s}, key=len, reverse=True)


def _read_password(path: str | Path) -> str:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"journal.password_file: value {str(path)!r}: cannot read: {reason}") from None
    password = text.rstrip("\r\n")
    if not password:
        raise InvalidInput(f"journal.password_file: value {str(path)!r}: empty")
    return password


def _resolve_url(text: str, password_file: str | Path | None) -> sa.URL:
    """The URL to connect with: ``postgresql://`` means psycopg 3, the password from the file."""
    parsed = sa.make_url(text)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return parsed
    if password_file is None and os.environ.get(PASSWORD_FILE_ENV):
        password_file = os.environ[PASSWORD_FILE_ENV]
    if password_file is not None:
        parsed = parsed.set(password=_read_password(password_file))
    return parsed


def _sqlite_file(url: str | sa.URL) -> Path | None:
    """The file a ``sqlite://`` URL names; None for other backends, memory and URI forms."""
    try:
        parsed = url if isinstance(url, sa.URL) else sa.make_url(url)
    except (SQLAlchemyError, ValueError):
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(database)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _text(value: str, what: str, *, limit: int | None = None) -> str:
    """A text column's value as both backends store it: NUL (which PostgreSQL's text
    cannot hold) as U+FFFD; longer than ``limit`` (a VARCHAR there) refused."""
    value = value.replace("\x00", "\ufffd")
    if limit is not None and len(value) > limit:
        raise InvalidInput(f"journal.{what}: value {value[:40]!r}...: longer than {limit} characters")
    return value


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _scrub_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """``value`` with secret-looking keys masked and every listed secret replaced.

    >>> redact({"cipassword": "x", "note": "pw is hunter2"}, ["hunter2"])
    {'cipassword': '***', 'note': 'pw is ***'}
    """
    return _redact(value, sorted({s for s in secrets if s}, key=len, reverse=True))


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            skey = _scrub_text(str(key), secrets)
            out[skey] = REDACTED if SECRET_KEY_RE.search(str(key)) else _redact(item, secrets)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(item, secrets) for item in value]
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else (an IP address, a date, an enum) is written as its text.
    return _scrub_text(str(value), secrets)


def _hashed_bytes(fields: Mapping[str, Any]) -> bytes:
    """prev_hash + canonical JSON of every field but ``hash`` and ``mac``, as UTF-8."""
    body = {k: v for k, v in fields.items() if k not in ("hash", "mac")}
    return (str(fields["prev_hash"]) + _canonical(body)).encode("utf-8")


def _row_hash(fields: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of every field but ``hash``)."""
    return hashlib.sha256(_hashed_bytes(fields)).hexdigest()


def _row_mac(key: bytes, fields: Mapping[str, Any]) -> str:
    """HMAC-SHA256 under ``key`` of exactly what :func:`_row_hash` hashes."""
    return hmac.new(key, _hashed_bytes(fields), hashlib.sha256).hexdigest()


def _legacy_digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """sha256 of the canonical ``[id, key, ts, value]`` list of unchained state rows."""
    body = [[r["id"], r["key"], r["ts"], r["value"]] for r in rows]
    return hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()


def _hash_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed form of a stored row: JSON columns parsed back to objects."""
    return {
        "seq": row["seq"],
        "ts": row["ts"],
        "actor": row["actor"],
        "action": row["action"],
        "target": row["target"],
        "before": None if row["before"] is None else json.loads(row["before"]),
        "after": None if row["after"] is None else json.loads(row["after"]),
        "result": row["result"],
        "detail": row["detail"],
        "prev_hash": row["prev_hash"],
    }


def _db_reason(exc: SQLAlchemyError) -> str:
    """A short, password-free reason: the driver's first line (``file is not a database``), or the class."""
    orig = getattr(exc, "orig", None)
    text = str(orig).strip().splitlines()[0] if orig is not None and str(orig).strip() else ""
    name = exc.__class__.__name__
    return f"{name}: {text[:160]}" if text else name


def _fork_safe(engine: Engine) -> None:
    """A pooled connection is never used by a forked child (the audit forks workers
    after reading the state): there it is dropped and a new one made (SQLAlchemy's recipe)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(_dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info.get("pid") != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise sa.exc.DisconnectionError(
                f"connection made in process {record.info.get('pid')}, used in {os.getpid()}"
            )


def _seq_range(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}-{last}"


class _ChainWalk:
    """One pass over the lines in seq order (chain, MACs, anchor), then the state rows against it."""

    def __init__(self, key: bytes | None, anchor: Anchor | None) -> None:
        self.key = key
        self.anchor = anchor
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.checked = 0
        self.last_seq = 0
        self.last_hash = GENESIS_HASH
        # stored hash -> seq, to tell "reordered" (follows another line) from "removed".
        self._seen: dict[Any, int] = {}
        self._anchor_hash: Any = None
        self.macs_ok = 0
        self._macs_present = 0
        self._mac_bad: list[int] = []
        self._mac_missing: list[int] = []
        self._unkeyed_prefix = 0
        self._first_keyed: int | None = None
        self._state_lines: dict[int, dict[str, Any]] = {}
        self._migrate: tuple[int, Any] | None = None

    def add(self, row: Mapping[str, Any]) -> None:
        self.checked += 1
        try:
            seq = int(row["seq"])
        except (TypeError, ValueError):
            self.problems.append(f"seq {row['seq']!r}: not a number (line edited)")
            return
        fields: dict[str, Any] | None
        try:
            fields = _hash_fields(row)
            recomputed: str | None = _row_hash(fields)
        except (ValueError, TypeError):  # a JSON column that is not JSON, a non-text field
            fields, recomputed = None, None
        if recomputed != row["hash"]:
            self.problems.append(f"seq {seq}: content does not match its hash (line edited)")
        prev_seq, prev_hash = self.last_seq, self.last_hash
        if seq != prev_seq + 1:
            first, last = prev_seq + 1, seq - 1
            self.problems.append(f"{_seq_range(first, last)}: missing before seq {seq} (line deleted)")
        elif row["prev_hash"] != prev_hash:
            if row["prev_hash"] in self._seen:
                self.problems.append(
                    f"seq {seq}: chained after seq {self._seen[row['prev_hash']]}, "
                    f"not seq {prev_seq} (lines reordered)"
                )
            else:
                self.problems.append(
                    f"seq {seq}: prev_hash does not match seq {prev_seq}'s hash "
                    "(line deleted, replaced or reordered)"
                )
        self._seen[row["hash"]] = seq
        self.last_seq, self.last_hash = seq, row["hash"]
        if self.anchor is not None and seq == self.anchor.seq:
            self._anchor_hash = row["hash"]
        self._check_mac(seq, row.get("mac"), fields)
        if fields is not None:
            if row["action"] == STATE_ACTION:
                self._state_lines[seq] = fields
            elif row["action"] == MIGRATE_ACTION and self._migrate is None:
                self._migrate = (seq, fields["after"])

    def _check_mac(self, seq: int, mac: Any, fields: Mapping[str, Any] | None) -> None:
        if mac is not None:
            self._macs_present += 1
        if self.key is None:
            return
        if mac is None:
            if self._first_keyed is None:
                self._unkeyed_prefix += 1
            else:
                self._mac_missing.append(seq)
            return
        if self._first_keyed is None:
            self._first_keyed = seq
        expected = None if fields is None else _row_mac(self.key, fields)
        if expected is not None and hmac.compare_digest(str(mac).encode(), expected.encode()):
            self.macs_ok += 1
        else:
            self._mac_bad.append(seq)

    def finish(self) -> None:
        """The findings that need the whole chain: the MAC summary and the anchor."""
        if self.key is not None:
            if self.checked and self._first_keyed is None:
                self.problems.append(
                    "no line carries a MAC: the key was never used to write this journal, "
                    "or every MAC was removed"
                )
            if self._mac_bad and self.macs_ok == 0 and len(self._mac_bad) > 1:
                self.problems.append(
                    f"no MAC matches the key ({len(self._mac_bad)} lines): a different key, "
                    "or every keyed line forged"
                )
            else:
                self.problems.extend(
                    f"seq {seq}: MAC does not match (line forged, or rewritten without the key)"
                    for seq in self._mac_bad
                )
            self.problems.extend(
                f"seq {seq}: no MAC after keyed lines (written without the key, or its MAC removed)"
                for seq in self._mac_missing
            )
            if self._first_keyed is not None and self._unkeyed_prefix:
                self.notes.append(
                    f"{_seq_range(1, self._first_keyed - 1)}: written before the key was used; "
                    f"covered by seq {self._first_keyed}'s MAC, which signs their hashes"
                )
        elif self._macs_present:
            self.notes.append(
                f"{self._macs_present} line(s) carry a MAC, not checked: give the key "
                f"(${KEY_ENV}, ${KEY_FILE_ENV} or --key-file)"
            )
        anchor = self.anchor
        if anchor is None or anchor.seq == 0:
            return
        if self.checked == 0:
            self.problems.append(f"journal is empty, but the anchor is at seq {anchor.seq} (table emptied)")
        elif self.last_seq < anchor.seq:
            self.problems.append(
                f"journal ends at seq {self.last_seq}, but the anchor is at seq {anchor.seq} (tail truncated)"
            )
        elif self._anchor_hash is None:
            self.problems.append(f"seq {anchor.seq}: the anchored line is missing (line deleted)")
        elif self._anchor_hash != anchor.hash:
            self.problems.append(
                f"seq {anchor.seq}: hash differs from the anchor's {anchor.hash[:12]}... "
                "(chain rewritten since the anchor was taken)"
            )

    def check_state(self, rows: list[dict[str, Any]], *, chained: bool) -> int:
        """Every state row must match the ``state.set`` line it names, and every such line have its row.

        Rows from before the state was chained must match the ``journal.migrate`` digest.
        """
        unchained: list[dict[str, Any]] = []
        owner: dict[Any, Any] = {}  # seq -> state row id
        prev = 0
        for r in rows:
            label = f"state row {r['id']} ({r['key']})"
            seq = r.get("seq") if chained else None
            if seq is None:
                unchained.append(r)
                continue
            if seq in owner:
                self.problems.append(f"{label}: names seq {seq} like state row {owner[seq]} (row copied)")
                continue
            owner[seq] = r["id"]
            line = self._state_lines.get(seq)
            if line is None:
                self.problems.append(f"{label}: seq {seq} is not a state line of the chain (row forged)")
                continue
            if seq <= prev:
                self.problems.append(f"{label}: out of the chain's order (rows reordered)")
            prev = max(prev, seq)
            try:
                value: Any = json.loads(r["value"])
            except (ValueError, TypeError):
                value = None
            if (line["target"], line["ts"], line["after"]) != (r["key"], r["ts"], value):
                self.problems.append(f"{label}: differs from its chained line seq {seq} (row edited)")
        self.problems.extend(
            f"seq {seq}: the state row this line wrote is missing (row deleted)"
            for seq in sorted(set(self._state_lines) - set(owner))
        )
        if not chained:
            if unchained:
                self.notes.append(
                    f"{len(unchained)} state row(s) from before the state was chained: not checked "
                    "until a writer opens this journal (it records their digest)"
                )
        elif self._migrate is None:
            self.problems.extend(
                f"state row {r['id']} ({r['key']}): not in the chain (row inserted)" for r in unchained
            )
        else:
            mseq, after = self._migrate
            recorded = after if isinstance(after, dict) else {}
            if (len(unchained), _legacy_digest(unchained)) != (
                recorded.get("legacy_state_rows"),
                recorded.get("legacy_state_digest"),
            ):
                self.problems.append(
                    f"state rows from before the chain: {len(unchained)} now, not the "
                    f"{recorded.get('legacy_state_rows')} seq {mseq} recorded (rows edited, added or deleted)"
                )
        return len(rows)


class Journal:
    """The append-only journal at ``url`` (a SQLAlchemy URL, or a path for a SQLite file).

    Safe to append to from many threads and processes at once: each append
    reads the chain's head and writes the next line in one serialised
    transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-level
    advisory lock, so READ COMMITTED writers queue instead of forking the chain).

    ``url``: a path (SQLite) or an SQLAlchemy URL; ``postgresql://`` is read as
    ``postgresql+psycopg://``. Its password comes with it from the environment,
    or from ``password_file`` (default ``$IPSINFRA_JOURNAL_PASSWORD_FILE``; one
    line), or from libpq (``$PGPASSWORD``, ``~/.pgpass``); :attr:`url` and every
    message show it masked. ``key``: the HMAC key lines are written and
    verified with; by default :func:`load_key` (the environment), ``None`` for
    none. ``create=False`` opens an existing journal to read: a missing file is
    :class:`JournalNotFound` (nothing is created) and an old schema is read as
    it is, not migrated.
    """

    def __init__(
        self,
        url: str | Path | None = None,
        *,
        key: bytes | _FromEnv | None = FROM_ENV,
        create: bool = True,
        password_file: str | Path | None = None,
    ) -> None:
        text = _to_url(url, create=create) if url is not None else default_journal_url(create=create)
        try:
            self._url = _resolve_url(text, password_file)
        except InvalidInput:  # the password file: its own message
            raise
        except (SQLAlchemyError, ValueError) as exc:
            reason = "" if isinstance(exc, SQLAlchemyError) else f" ({exc})"
            raise JournalUnreadable(
                f"journal {safe_url(text)}: not a path or an SQLAlchemy URL{reason}"
            ) from None
        self._key: bytes | None = load_key() if key is FROM_ENV else key
        if self._key is not None and len(self._key) < MIN_KEY_BYTES:
            raise InvalidInput(f"journal.key: shorter than {MIN_KEY_BYTES} bytes")
        if not create:
            path = _sqlite_file(self._url)
            if path is not None and not path.is_file():
                raise JournalNotFound(f"journal {path}: no such file (reading creates none)")
        try:
            self._engine = self._make_engine(self._url)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            # ImportError: no driver for this backend ("No module named 'psycopg'").
            raise JournalUnreadable(
                f"journal {self._safe_url}: cannot open: {exc.__class__.__name__}: {str(exc)[:160]}"
            ) from None
        try:
            if create:
                # One transaction under the writers' lock: processes that open a new
                # journal at once create and migrate it once, in turn.
                with self._engine.begin() as conn:
                    self._lock_chain(conn)
                    _metadata.create_all(conn)
                    self._migrate(conn)
            self._read_schema()
        except JournalError:
            self._engine.dispose()
            raise
        except SQLAlchemyError as exc:
            self._engine.dispose()
            cls = JournalError if create else JournalUnreadable
            raise cls(f"journal {self._safe_url}: cannot open: {_db_reason(exc)}") from exc

    def _read_schema(self) -> None:
        """Which columns this database has (an old journal read with ``create=False`` lacks some)."""
        inspector = sa.inspect(self._engine)
        tables = set(inspector.get_table_names())
        if journal_table.name not in tables:
            raise JournalUnreadable(f"journal {self._safe_url}: no journal table here (not a journal)")
        self._journal_cols = {c["name"] for c in inspector.get_columns(journal_table.name)}
        self._state_cols = (
            {c["name"] for c in inspector.get_columns(state_table.name)}
            if state_table.name in tables
            else set()
        )

    def _migrate(self, conn: Connection) -> None:
        """Add the ``mac`` and state ``seq`` columns to an older journal; never rewrite a row (§11.6).

        Runs in the caller's transaction, under the writers' lock (PostgreSQL's
        DDL is transactional: a failure leaves the old schema). State rows
        written before the state was chained stay as they are; one
        ``journal.migrate`` line records their count and digest so ``verify``
        covers them too.
        """
        inspector = sa.inspect(conn)
        journal_cols = {c["name"] for c in inspector.get_columns(journal_table.name)}
        state_cols = {c["name"] for c in inspector.get_columns(state_table.name)}
        if "mac" in journal_cols and "seq" in state_cols:
            return
        if "mac" not in journal_cols:
            conn.exec_driver_sql("ALTER TABLE journal ADD COLUMN mac VARCHAR(64)")
        if "seq" not in state_cols:
            conn.exec_driver_sql("ALTER TABLE journal_state ADD COLUMN seq INTEGER")
            t = state_table
            legacy = [
                dict(r._mapping)
                for r in conn.execute(sa.select(t.c.id, t.c.key, t.c.ts, t.c.value).order_by(t.c.id))
            ]
            if legacy:
                self._append_in(
                    conn,
                    {
                        "actor": _text(default_actor(), "actor")[:_MAX_NAME],
                        "action": MIGRATE_ACTION,
                        "target": state_table.name,
                        "before": None,
                        "after": {
                            "legacy_state_rows": len(legacy),
                            "legacy_state_last_id": legacy[-1]["id"],
                            "legacy_state_digest": _legacy_digest(legacy),
                        },
                        "result": "ok",
                        "detail": "state rows written before the state was chained: count and digest",
                    },
                    _now(),
                )

    @property
    def key(self) -> bytes | None:
        """The HMAC key lines are written and checked with (None: hash chain only)."""
        return self._key

    @property
    def url(self) -> str:
        """The journal's URL as messages show it: the password masked (:func:`safe_url`)."""
        return safe_url(self._url)

    @property
    def backend(self) -> str:
        """``sqlite``, ``postgresql``... (SQLAlchemy's backend name)."""
        return self._url.get_backend_name()

    @property
    def _safe_url(self) -> str:
        return safe_url(self._url)

    @staticmethod
    def _make_engine(url: sa.URL) -> Engine:
        if url.get_backend_name() != "sqlite":
            connect_args: dict[str, Any] = {}
            if url.get_backend_name() == "postgresql":
                # A dead server fails the job in seconds, not at the TCP timeout; the
                # server's views name who holds the chain lock. The URL's own values win.
                connect_args = {
                    k: v
                    for k, v in {"connect_timeout": 10, "application_name": "ipsinfra"}.items()
                    if k not in url.query
                }
            engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
            _fork_safe(engine)
            return engine
        engine = sa.create_engine(url, connect_args={"timeout": 60})
        _fork_safe(engine)

        # pysqlite's own transaction handling defers BEGIN; take the write lock at
        # BEGIN instead (the SQLAlchemy docs' recipe), so two appenders never read
        # the same head.
        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA busy_timeout = 60000")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    @staticmethod
    def _lock_chain(conn: Connection) -> None:
        """Serialise the chain's writers until this transaction ends.

        SQLite's ``BEGIN IMMEDIATE`` already did. PostgreSQL under READ COMMITTED
        would let two writers read the same head: a transaction-level advisory
        lock makes them queue, and the head read after it sees the last commit.
        It is released by COMMIT or ROLLBACK, never left behind by a crash.
        """
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_CHAIN_LOCK)))

    # --- context manager ------------------------------------------------
    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- writing --------------------------------------------------------
    def record(
        self,
        action: str,
        target: str,
        *,
        result: str = "ok",
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        detail: str = "",
        actor: str | None = None,
        secrets: Iterable[str] = (),
    ) -> JournalEntry:
        """Append one line and return it as written (redacted).

        ``secrets`` are strings (passwords, tokens) to blank out wherever they
        appear; keys that look like secrets (``password``, ``api_token``...) are
        masked whatever their value.
        """
        if result not in RESULTS:
            raise InvalidInput(f"journal.result: value {result!r}: must be one of {', '.join(RESULTS)}")
        if not action:
            raise InvalidInput("journal.action: value '': must not be empty")
        secret_list = sorted({s for s in secrets if s}, key=len, reverse=True)
        fields: dict[str, Any] = {
            "actor": _text(_redact(actor, secret_list), "actor", limit=_MAX_NAME)
            if actor
            else _text(_redact(default_actor(), secret_list), "actor")[:_MAX_NAME],
            "action": _text(_redact(action, secret_list), "action", limit=_MAX_NAME),
            "target": _text(_redact(target, secret_list), "target"),
            # A JSON round trip now, so the hash is of exactly what verify re-reads.
            "before": None if before is None else json.loads(_canonical(_redact(before, secret_list))),
            "after": None if after is None else json.loads(_canonical(_redact(after, secret_list))),
            "result": result,
            "detail": _text(_redact(detail, secret_list), "detail"),
        }
        return JournalEntry.model_validate(
            self._write(action, lambda conn: self._append_in(conn, fields, _now()))
        )

    def _write(self, what: str, work: Any) -> Any:
        """Run ``work(conn)`` in one transaction, again when another writer took the same seq first."""
        last_exc: Exception | None = None
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                with self._engine.begin() as conn:
                    return work(conn)
            except IntegrityError as exc:
                # Another writer took this seq first (no table lock outside SQLite): retry.
                last_exc = exc
                time.sleep(min(0.01 * 2**attempt, 0.5))
            except SQLAlchemyError as exc:
                raise JournalError(
                    f"journal {self._safe_url}: cannot append {what}: {_db_reason(exc)}"
                ) from exc
        raise JournalError(
            f"journal {self._safe_url}: cannot append {what} after {_APPEND_ATTEMPTS} attempts: "
            f"{last_exc.__class__.__name__}"
        )

    def _append_in(self, conn: Connection, fields: Mapping[str, Any], ts: str) -> dict[str, Any]:
        """Append one line inside the caller's transaction; return it as written."""
        return self._append_many_in(conn, [fields], ts)[0]

    def _append_many_in(
        self, conn: Connection, many: list[Mapping[str, Any]], ts: str
    ) -> list[dict[str, Any]]:
        """Append lines in order inside the caller's transaction: one head read, one insert."""
        t = journal_table
        self._lock_chain(conn)
        head = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
        seq = 0 if head is None else head.seq
        prev_hash = GENESIS_HASH if head is None else head.hash
        rows: list[dict[str, Any]] = []
        stored_rows: list[dict[str, Any]] = []
        for fields in many:
            seq += 1
            row: dict[str, Any] = {"seq": seq, "ts": ts, **fields, "prev_hash": prev_hash}
            row["hash"] = prev_hash = _row_hash(row)
            row["mac"] = None if self._key is None else _row_mac(self._key, row)
            stored = dict(row)
            for col in ("before", "after"):
                stored[col] = None if row[col] is None else _canonical(row[col])
            rows.append(row)
            stored_rows.append(stored)
        conn.execute(t.insert(), stored_rows)
        return rows

    # --- reading --------------------------------------------------------
    def entries(
        self,
        *,
        target: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
        include_state: bool = False,
    ) -> list[JournalEntry]:
        """Lines in seq order, filtered by exact ``target``/``action`` and time.

        ``since`` is inclusive (a naive datetime is taken as UTC); ``limit`` keeps
        the NEWEST ``limit`` lines (still returned oldest first). The ``state.set``
        lines every state write adds are left out unless ``include_state`` (or
        ``action="state.set"``). A line that cannot be read is
        :class:`JournalUnreadable` naming its seq.
        """
        t = journal_table
        query = sa.select(*self._journal_columns())
        if target is not None:
            query = query.where(t.c.target == target)
        if action is not None:
            query = query.where(t.c.action == action)
        elif not include_state:
            query = query.where(t.c.action != STATE_ACTION)
        if since is not None:
            when = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
            query = query.where(t.c.ts >= when.astimezone(dt.UTC).isoformat(timespec="microseconds"))
        if limit is not None:
            if limit < 0:
                raise InvalidInput(f"journal.limit: value {limit!r}: must be >= 0")
            query = query.order_by(t.c.seq.desc()).limit(limit)
        else:
            query = query.order_by(t.c.seq)
        try:
            with self._engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot read: {_db_reason(exc)}") from exc
        try:
            rows.sort(key=lambda r: r["seq"])
        except TypeError:
            raise JournalUnreadable(
                f"journal {self._safe_url}: a seq is not a number: run `ipsinfra journal verify`"
            ) from None
        return [self._entry(r) for r in rows]

    def _entry(self, row: Mapping[str, Any]) -> JournalEntry:
        try:
            return JournalEntry.model_validate({**row, **_hash_fields(row)})
        except (ValueError, TypeError) as exc:  # JSONDecodeError and ValidationError are ValueErrors
            field = ""
            if isinstance(exc, json.JSONDecodeError):
                field = " (a JSON column is not JSON)"
            elif hasattr(exc, "errors"):
                field = " (" + ", ".join(str(e["loc"][0]) for e in exc.errors()[:3] if e.get("loc")) + ")"
            raise JournalUnreadable(
                f"journal {self._safe_url}: seq {row.get('seq')!r}: malformed line{field}: "
                "run `ipsinfra journal verify`"
            ) from None

    def _journal_columns(self) -> list[sa.Column[Any]]:
        """The journal's columns this database has (an unmigrated journal has no ``mac``)."""
        return [c for c in journal_table.c if c.name in self._journal_cols]

    def _iter_rows(self, conn: Connection) -> Iterator[dict[str, Any]]:
        query = sa.select(*self._journal_columns()).order_by(journal_table.c.seq)
        for r in conn.execute(query):
            yield dict(r._mapping)

    def head(self) -> Anchor:
        """The last line's seq and stored hash, ``0:000…`` for an empty journal.

        Keep it outside the database (a ticket, the shift hand-over, a log
        shipper) and pass it to :meth:`verify` later: a removed tail, an emptied
        table or a rewritten chain then shows.

        >>> str(journal.head())  # doctest: +SKIP
        '42:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
        """
        t = journal_table
        try:
            with self._engine.connect() as conn:
                last = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot read: {_db_reason(exc)}") from exc
        if last is None:
            return Anchor(seq=0, hash=GENESIS_HASH)
        try:
            return Anchor(seq=int(last.seq), hash=str(last.hash))
        except (ValueError, TypeError):
            raise JournalUnreadable(
                f"journal {self._safe_url}: the last line's seq {last.seq!r} is not a number"
            ) from None

    def verify(self, expect: Anchor | str | None = None) -> VerifyReport:
        """Walk the hash chain; name every line that was edited, removed or reordered.

        With ``expect`` (an :class:`Anchor` or ``"SEQ:HASH"`` taken earlier by
        :meth:`head`), a truncated tail, an emptied table or a chain rewritten
        before that point is found too. With a key, every line's MAC is checked
        (lines before the first keyed one are covered by its MAC, which signs
        their hash), so an edit with recomputed hashes shows without an anchor.
        The state table is checked against its ``state.set`` lines.
        """
        anchor = parse_anchor(expect) if isinstance(expect, str) else expect
        walk = _ChainWalk(self._key, anchor)
        try:
            with self._engine.connect() as conn:
                for row in self._iter_rows(conn):
                    walk.add(row)
                state_rows = self._state_rows(conn)
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot read: {_db_reason(exc)}") from exc
        walk.finish()
        state_checked = walk.check_state(state_rows, chained="seq" in self._state_cols)
        return VerifyReport(
            ok=not walk.problems,
            checked=walk.checked,
            problems=walk.problems,
            head=Anchor(seq=walk.last_seq, hash=walk.last_hash),
            macs_checked=walk.macs_ok,
            state_rows_checked=state_checked,
            notes=walk.notes,
        )

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection to read with; a database error is :class:`JournalError` naming the safe URL."""
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot read: {_db_reason(exc)}") from exc

    def _state_rows(self, conn: Connection) -> list[dict[str, Any]]:
        if not self._state_cols:
            return []
        t = state_table
        cols = [c for c in t.c if c.name in self._state_cols]
        return [dict(r._mapping) for r in conn.execute(sa.select(*cols).order_by(t.c.id))]

    # --- key/value state ------------------------------------------------
    def get_state(self, key: str) -> dict[str, Any] | None:
        """The latest value stored under ``key``, or None."""
        t = state_table
        query = sa.select(t.c.value).where(t.c.key == key).order_by(t.c.id.desc()).limit(1)
        with self._reading() as conn:
            value = conn.execute(query).scalar_one_or_none()
        if value is None:
            return None
        loaded = self._state_value(key, value)
        return loaded if isinstance(loaded, dict) else None

    def _state_value(self, key: str, text: Any) -> Any:
        try:
            return json.loads(text)
        except (ValueError, TypeError):
            raise JournalUnreadable(
                f"journal {self._safe_url}: state {key!r}: value is not JSON: run `ipsinfra journal verify`"
            ) from None

    def latest_states(self, prefix: str) -> dict[str, dict[str, Any]]:
        """{key: latest value} of every key that starts with ``prefix``, in one query.

        The nightly audit reads its whole state (``boot:``, ``vds:``, ``ran:``) once
        instead of one query per VDS.
        """
        t = state_table
        newest = sa.select(sa.func.max(t.c.id)).where(t.c.key.startswith(prefix, autoescape=True))
        query = sa.select(t.c.key, t.c.value).where(t.c.id.in_(newest.group_by(t.c.key)))
        with self._reading() as conn:
            rows = conn.execute(query).all()
        states: dict[str, dict[str, Any]] = {}
        for key, value in rows:
            loaded = self._state_value(key, value)
            if isinstance(loaded, dict):
                states[key] = loaded
        return states

    def set_state(self, key: str, value: Mapping[str, Any]) -> None:
        """Store a new value under ``key`` (older values stay, as history; redacted too)."""
        self.set_states({key: value})

    def set_states(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        """Store several keys at once, in one transaction (the audit's ``boot:``/``ran:`` of every node).

        One commit instead of one per key: on SQLite each commit is an fsync.
        Each key is also a ``state.set`` line of the chain (target the key,
        ``after`` the value) and its row names that line's seq: the chain, an
        anchor and the key cover the state as they cover every action.
        """
        if any(not key for key in values):
            raise InvalidInput("journal.state key: value '': must not be empty")
        if not values:
            return
        texts = {
            _text(key, "state key", limit=_MAX_NAME): _canonical(_redact(value, []))
            for key, value in values.items()
        }
        actor = _text(default_actor(), "actor")[:_MAX_NAME]

        def work(conn: Connection) -> None:
            ts = _now()
            lines = self._append_many_in(
                conn,
                [
                    {
                        "actor": actor,
                        "action": STATE_ACTION,
                        "target": key,
                        "before": None,
                        "after": json.loads(text),
                        "result": "ok",
                        "detail": "",
                    }
                    for key, text in texts.items()
                ],
                ts,
            )
            conn.execute(
                state_table.insert(),
                [
                    {"key": key, "ts": ts, "value": text, "seq": line["seq"]}
                    for (key, text), line in zip(texts.items(), lines, strict=True)
                ],
            )

        self._write(f"state {', '.join(list(texts)[:3])}", work)

    def state_history(self, key: str) -> list[tuple[dt.datetime, dict[str, Any]]]:
        """Every value ever stored under ``key``, oldest first."""
        t = state_table
        with self._reading() as conn:
            rows = conn.execute(sa.select(t.c.ts, t.c.value).where(t.c.key == key).order_by(t.c.id)).all()
        return [(dt.datetime.fromisoformat(r.ts), self._state_value(key, r.value)) for r in rows]


__all__ = [
    "FROM_ENV",
    "GENESIS_HASH",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "PASSWORD_FILE_ENV",
    "STATE_ACTION",
    "Anchor",
    "Journal",
    "JournalEntry",
    "JournalNotFound",
    "JournalUnreadable",
    "VerifyReport",
    "default_actor",
    "default_journal_url",
    "load_key",
    "parse_anchor",
    "redact",
    "safe_url",
    "url_secrets",
]
