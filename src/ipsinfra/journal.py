"""The append-only action journal (§11.6: logs are never erased or rewritten).

Every action ipsinfra takes (or plans, or refuses) is one line, hash-chained to
the line before it so an edited, removed or reordered line shows in
:meth:`Journal.verify`. SQLAlchemy Core keeps it portable: a SQLite file by
default, PostgreSQL (or anything SQLAlchemy speaks) by URL.

Secrets never enter: ``before``, ``after`` and ``detail`` are redacted before
they are hashed and written.

    >>> with Journal(tmp_path / "j.sqlite3") as j:  # doctest: +SKIP
    ...     j.record("vds.stop", "kvm1/VPS1234(34.56)", before={"state": "running"})
    JournalEntry(seq=1, action='vds.stop', result='ok', ...)
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
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

from ipsinfra.errors import InvalidInput, JournalError

GENESIS_HASH = "0" * 64
REDACTED = "***"
RESULTS = ("ok", "failed", "refused", "planned")
Result = Literal["ok", "failed", "refused", "planned"]
SECRET_KEY_RE = re.compile(r"pass|secret|token|key|cipassword", re.IGNORECASE)
# Attempts at one append when another writer took the same seq first (PostgreSQL
# under READ COMMITTED); SQLite serialises with BEGIN IMMEDIATE and rarely retries.
_APPEND_ATTEMPTS = 20

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
)
sa.Index("ix_journal_target", journal_table.c.target)
sa.Index("ix_journal_action", journal_table.c.action)

# Key/value state (e.g. the last boot id per node). Not hash-chained, but a new
# value is a new row: history is never overwritten or deleted.
state_table = sa.Table(
    "journal_state",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(255), nullable=False, index=True),
    sa.Column("ts", sa.String(40), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
)


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


class VerifyReport(BaseModel):
    """What :meth:`Journal.verify` found. ``problems`` name the seq of each bad line."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    checked: int
    problems: list[str]

    def raise_on_error(self) -> None:
        """Raise :class:`ipsinfra.errors.JournalTampered` when the chain does not verify."""
        from ipsinfra.errors import JournalTampered

        if not self.ok:
            raise JournalTampered("; ".join(self.problems))


def default_journal_url() -> str:
    """``$IPSINFRA_JOURNAL`` or ``~/.local/state/ipsinfra/journal.sqlite3`` (as a URL)."""
    env = os.environ.get("IPSINFRA_JOURNAL")
    if env:
        return _to_url(env)
    return _to_url(Path.home() / ".local" / "state" / "ipsinfra" / "journal.sqlite3")


def default_actor() -> str:
    """``user@host`` of whoever runs this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _to_url(url: str | Path) -> str:
    if isinstance(url, Path) or "://" not in url:
        path = Path(url).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return url


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


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


def _row_hash(fields: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of every field but ``hash``)."""
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256((fields["prev_hash"] + _canonical(body)).encode("utf-8")).hexdigest()


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


class Journal:
    """The append-only journal at ``url`` (a SQLAlchemy URL, or a path for a SQLite file).

    Safe to append to from many threads and processes at once: each append
    reads the chain's head and writes the next line in one serialised
    transaction.
    """

    def __init__(self, url: str | Path | None = None) -> None:
        self.url = _to_url(url) if url is not None else default_journal_url()
        try:
            self._engine = self._make_engine(self.url)
            _metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot open: {exc.__class__.__name__}") from exc

    @property
    def _safe_url(self) -> str:
        """The URL without its password, for messages."""
        try:
            return sa.make_url(self.url).render_as_string(hide_password=True)
        except SQLAlchemyError:
            return "<journal>"

    @staticmethod
    def _make_engine(url: str) -> Engine:
        parsed = sa.make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

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
            "actor": _redact(actor or default_actor(), secret_list),
            "action": _redact(action, secret_list),
            "target": _redact(target, secret_list),
            # A JSON round trip now, so the hash is of exactly what verify re-reads.
            "before": None if before is None else json.loads(_canonical(_redact(before, secret_list))),
            "after": None if after is None else json.loads(_canonical(_redact(after, secret_list))),
            "result": result,
            "detail": _redact(detail, secret_list),
        }
        last_exc: Exception | None = None
        for attempt in range(_APPEND_ATTEMPTS):
            try:
                return self._append(fields)
            except IntegrityError as exc:
                # Another writer took this seq first (no table lock outside SQLite): retry.
                last_exc = exc
                time.sleep(min(0.01 * 2**attempt, 0.5))
            except SQLAlchemyError as exc:
                raise JournalError(
                    f"journal {self._safe_url}: cannot append {action}: {exc.__class__.__name__}"
                ) from exc
        raise JournalError(
            f"journal {self._safe_url}: cannot append {action} after {_APPEND_ATTEMPTS} attempts: "
            f"{last_exc.__class__.__name__}"
        )

    def _append(self, fields: Mapping[str, Any]) -> JournalEntry:
        t = journal_table
        with self._engine.begin() as conn:
            head = conn.execute(sa.select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1)).first()
            seq = 1 if head is None else head.seq + 1
            prev_hash = GENESIS_HASH if head is None else head.hash
            row: dict[str, Any] = {"seq": seq, "ts": _now(), **fields, "prev_hash": prev_hash}
            row["hash"] = _row_hash(row)
            stored = dict(row)
            for col in ("before", "after"):
                stored[col] = None if row[col] is None else _canonical(row[col])
            conn.execute(t.insert().values(**stored))
        return JournalEntry.model_validate(row)

    # --- reading --------------------------------------------------------
    def entries(
        self,
        *,
        target: str | None = None,
        action: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Lines in seq order, filtered by exact ``target``/``action`` and time.

        ``since`` is inclusive (a naive datetime is taken as UTC); ``limit`` keeps
        the NEWEST ``limit`` lines (still returned oldest first).
        """
        t = journal_table
        query = sa.select(t)
        if target is not None:
            query = query.where(t.c.target == target)
        if action is not None:
            query = query.where(t.c.action == action)
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
            raise JournalError(f"journal {self._safe_url}: cannot read: {exc.__class__.__name__}") from exc
        rows.sort(key=lambda r: r["seq"])
        return [JournalEntry.model_validate({**r, **_hash_fields(r)}) for r in rows]

    def _iter_rows(self) -> Iterator[dict[str, Any]]:
        with self._engine.connect() as conn:
            for r in conn.execute(sa.select(journal_table).order_by(journal_table.c.seq)):
                yield dict(r._mapping)

    def verify(self) -> VerifyReport:
        """Walk the hash chain; name every line that was edited, removed or reordered.

        A removed LAST line cannot be seen from the chain alone; anchor the head
        elsewhere (e.g. the shift hand-over) where that matters.
        """
        problems: list[str] = []
        checked = 0
        prev_seq = 0
        prev_hash = GENESIS_HASH
        # stored hash -> seq, to tell "reordered" (follows another line) from "removed".
        seen: dict[str, int] = {}
        try:
            for row in self._iter_rows():
                checked += 1
                seq = row["seq"]
                try:
                    fields = _hash_fields(row)
                    recomputed = _row_hash(fields)
                except (ValueError, TypeError):
                    recomputed = None
                if recomputed != row["hash"]:
                    problems.append(f"seq {seq}: content does not match its hash (line edited)")
                if seq != prev_seq + 1:
                    first, last = prev_seq + 1, seq - 1
                    missing = f"seq {first}" if first == last else f"seq {first}-{last}"
                    problems.append(f"{missing}: missing before seq {seq} (line deleted)")
                elif row["prev_hash"] != prev_hash:
                    if row["prev_hash"] in seen:
                        problems.append(
                            f"seq {seq}: chained after seq {seen[row['prev_hash']]}, "
                            f"not seq {prev_seq} (lines reordered)"
                        )
                    else:
                        problems.append(
                            f"seq {seq}: prev_hash does not match seq {prev_seq}'s hash "
                            "(line deleted, replaced or reordered)"
                        )
                seen[row["hash"]] = seq
                prev_seq, prev_hash = seq, row["hash"]
        except SQLAlchemyError as exc:
            raise JournalError(f"journal {self._safe_url}: cannot read: {exc.__class__.__name__}") from exc
        return VerifyReport(ok=not problems, checked=checked, problems=problems)

    # --- key/value state ------------------------------------------------
    def get_state(self, key: str) -> dict[str, Any] | None:
        """The latest value stored under ``key``, or None."""
        t = state_table
        query = sa.select(t.c.value).where(t.c.key == key).order_by(t.c.id.desc()).limit(1)
        with self._engine.connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        if value is None:
            return None
        loaded = json.loads(value)
        return loaded if isinstance(loaded, dict) else None

    def latest_states(self, prefix: str) -> dict[str, dict[str, Any]]:
        """{key: latest value} of every key that starts with ``prefix``, in one query.

        The nightly audit reads its whole state (``boot:``, ``vds:``) once
        instead of one query per VDS.
        """
        t = state_table
        newest = sa.select(sa.func.max(t.c.id)).where(t.c.key.startswith(prefix, autoescape=True))
        query = sa.select(t.c.key, t.c.value).where(t.c.id.in_(newest.group_by(t.c.key)))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        states: dict[str, dict[str, Any]] = {}
        for key, value in rows:
            loaded = json.loads(value)
            if isinstance(loaded, dict):
                states[key] = loaded
        return states

    def set_state(self, key: str, value: Mapping[str, Any]) -> None:
        """Store a new value under ``key`` (older values stay, as history; redacted too)."""
        if not key:
            raise InvalidInput("journal.state key: value '': must not be empty")
        text = _canonical(_redact(value, []))
        with self._engine.begin() as conn:
            conn.execute(state_table.insert().values(key=key, ts=_now(), value=text))

    def state_history(self, key: str) -> list[tuple[dt.datetime, dict[str, Any]]]:
        """Every value ever stored under ``key``, oldest first."""
        t = state_table
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.ts, t.c.value).where(t.c.key == key).order_by(t.c.id)).all()
        return [(dt.datetime.fromisoformat(r.ts), json.loads(r.value)) for r in rows]


__all__ = [
    "GENESIS_HASH",
    "Journal",
    "JournalEntry",
    "VerifyReport",
    "default_actor",
    "default_journal_url",
    "redact",
]
