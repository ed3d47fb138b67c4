"""The hash chain: a line's canonical form, its hash and MAC, anchors, and the verification walk.

Every line is hash-chained to the line before it (``sha256(prev_hash +
canonical JSON)``), so an edited, removed or reordered line shows. The chain
alone cannot show a removed tail, an emptied table or a line edited with every
later hash recomputed. Two defences, usable together:

* an **anchor** (:class:`Anchor`, ``SEQ:HASH``) kept elsewhere (a ticket, a log
  shipper) catches all three;
* a **key** (HMAC-SHA256, ``IPSINFRA_JOURNAL_KEY`` or a file named by
  ``IPSINFRA_JOURNAL_KEY_FILE``): every line written with it carries a MAC of
  its canonical form, which someone who can only write the database cannot
  forge.

The key/value state is covered by the same chain: every state write is also a
``state.set`` line, and its state row names that line's seq. Pure code: no
database here, only rows as mappings.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ipsinfra.errors import InvalidInput

__all__ = [
    "GENESIS_HASH",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "MIGRATE_ACTION",
    "MIN_KEY_BYTES",
    "STATE_ACTION",
    "Anchor",
    "ChainWalk",
    "VerifyReport",
    "canonical",
    "hash_fields",
    "hashed_bytes",
    "legacy_digest",
    "load_key",
    "parse_anchor",
    "row_hash",
    "row_mac",
]

GENESIS_HASH = "0" * 64
KEY_ENV = "IPSINFRA_JOURNAL_KEY"
KEY_FILE_ENV = "IPSINFRA_JOURNAL_KEY_FILE"
MIN_KEY_BYTES = 16
# The action of the line every state write adds to the chain (hidden from
# ``Journal.entries`` unless asked for), and of the line that records the
# state rows written before the state was chained.
STATE_ACTION = "state.set"
MIGRATE_ACTION = "journal.migrate"
_ANCHOR_RE = re.compile(r"(\d{1,18}):([0-9a-f]{64})")
# what an unparsable state value reads as: never equal to a value a line recorded
_NOT_JSON = object()


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


class VerifyReport(BaseModel):
    """What ``Journal.verify`` found. ``problems`` name the seq of each bad line.

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


def canonical(obj: Any) -> str:
    """The one JSON text of ``obj``: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def hashed_bytes(fields: Mapping[str, Any]) -> bytes:
    """prev_hash + canonical JSON of every field but ``hash`` and ``mac``, as UTF-8."""
    body = {k: v for k, v in fields.items() if k not in ("hash", "mac")}
    return (str(fields["prev_hash"]) + canonical(body)).encode("utf-8")


def row_hash(fields: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of every field but ``hash``)."""
    return hashlib.sha256(hashed_bytes(fields)).hexdigest()


def row_mac(key: bytes, fields: Mapping[str, Any]) -> str:
    """HMAC-SHA256 under ``key`` of exactly what :func:`row_hash` hashes."""
    return hmac.new(key, hashed_bytes(fields), hashlib.sha256).hexdigest()


def legacy_digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """sha256 of the canonical ``[id, key, ts, value]`` list of unchained state rows."""
    body = [[r["id"], r["key"], r["ts"], r["value"]] for r in rows]
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def hash_fields(row: Mapping[str, Any]) -> dict[str, Any]:
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


def _seq_range(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seq {first}-{last}"


class ChainWalk:
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
            fields = hash_fields(row)
            recomputed: str | None = row_hash(fields)
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
        expected = None if fields is None else row_mac(self.key, fields)
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
                value = _NOT_JSON  # equal to no chained value, not even a null one
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
            if (len(unchained), legacy_digest(unchained)) != (
                recorded.get("legacy_state_rows"),
                recorded.get("legacy_state_digest"),
            ):
                self.problems.append(
                    f"state rows from before the chain: {len(unchained)} now, not the "
                    f"{recorded.get('legacy_state_rows')} seq {mseq} recorded (rows edited, added or deleted)"
                )
        return len(rows)
