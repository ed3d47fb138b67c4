"""The hash chain (store/chain.py) on its own, fed rows as the database returns them (issue 23):
golden hashes of non-ASCII lines, the key's sources and bounds, the anchor's text, and what the
verification walk says for each kind of tampering, word for word (operators paste it into the
shift hand-over, so the wording is behaviour)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from ipsinfra.errors import InvalidInput, JournalTampered
from ipsinfra.store.chain import (
    GENESIS_HASH,
    KEY_ENV,
    KEY_FILE_ENV,
    MIGRATE_ACTION,
    STATE_ACTION,
    Anchor,
    ChainWalk,
    VerifyReport,
    canonical,
    legacy_digest,
    load_key,
    parse_anchor,
    row_hash,
    row_mac,
)

KEY = b"k" * 32
TS = "2026-12-07T02:00:00.000000+00:00"
# sha256 of GENESIS_HASH + the hand-written canonical text of _chain(1)'s line:
# '{"action":"vds.stop","actor":"дежурный@ctl1","after":null,"before":{"n":1,"état":"running"},
# "detail":"§7.2 «жалоба» 日本","prev_hash":"000…","result":"ok","seq":1,...}'. A change of the
# canonical form (ensure_ascii, separators, key order, hashed fields) fails every stored journal.
GOLDEN_HASH = "e8a61458197a66af093ab7e16d2f58dbc9b5ccf00d662124d55f00b1ef55ab8d"


def _fields(seq: int, prev: str, **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "seq": seq,
        "ts": TS,
        "actor": "дежурный@ctl1",
        "action": "vds.stop",
        "target": "kvm1/VPS1234(34.56)",
        "before": {"état": "running", "n": seq},
        "after": None,
        "result": "ok",
        "detail": "§7.2 «жалоба» 日本",
        "prev_hash": prev,
    }
    fields.update(over)
    return fields


def _stored(fields: dict[str, Any], key: bytes | None = None) -> dict[str, Any]:
    """The row as the database holds it: JSON columns as text, the hash and the MAC."""
    row = dict(fields)
    for col in ("before", "after"):
        row[col] = None if fields[col] is None else canonical(fields[col])
    row["hash"] = row_hash(fields)
    row["mac"] = None if key is None else row_mac(key, fields)
    return row


def _chain(n: int, key: bytes | None = None, **over: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        rows.append(_stored(_fields(seq, prev, **over), key))
        prev = rows[-1]["hash"]
    return rows


def _walk(rows: list[dict[str, Any]], key: bytes | None = None, anchor: Anchor | None = None) -> ChainWalk:
    walk = ChainWalk(key, anchor)
    for row in rows:
        walk.add(row)
    walk.finish()
    return walk


# --- the canonical form and the hash ----------------------------------------------------------
def test_golden_hash_of_a_non_ascii_line() -> None:
    line = _chain(1)[0]
    assert line["hash"] == GOLDEN_HASH
    assert line["before"] == '{"n":1,"état":"running"}'  # UTF-8 as is, keys sorted, no spaces


def test_hash_and_mac_ignore_the_stored_hash_and_mac_columns() -> None:
    fields = _fields(1, GENESIS_HASH)
    stored = {**fields, "hash": "f" * 64, "mac": "e" * 64}
    assert row_hash(stored) == row_hash(fields) == GOLDEN_HASH
    assert row_mac(KEY, stored) == row_mac(KEY, fields)
    assert row_mac(KEY, fields) != row_mac(b"K" * 32, fields)


def test_canonical_writes_what_json_cannot_hold_as_its_text() -> None:
    at = dt.datetime(2026, 12, 7, 1, 2, 3, tzinfo=dt.UTC)
    assert (
        canonical({"at": at, "p": Path("/srv/ключ")}) == '{"at":"2026-12-07 01:02:03+00:00","p":"/srv/ключ"}'
    )


def test_legacy_digest_golden() -> None:
    rows = [{"id": 1, "key": "boot:узел", "ts": TS, "value": '{"boot_id":"é"}'}]
    # sha256 of '[[1,"boot:узел","2026-12-07T02:00:00.000000+00:00","{\\"boot_id\\":\\"é\\"}"]]'
    assert legacy_digest(rows) == "6ac3f778cc40e9cd5f5472f6d1436ece6b73d0c69271edd2d9b21d69bfd82f57"


# --- the key ---------------------------------------------------------------------------------
@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("content", "key"),
    [
        (b"0123456789abcdeX\n", b"0123456789abcdeX"),  # only CR/LF are stripped, not other letters
        (b"0123456789abcdef \t\r\n", b"0123456789abcdef \t"),  # nor other white space
        (b"0123456789abcdef", b"0123456789abcdef"),  # exactly 16 bytes is enough
    ],
)
def test_a_key_file_is_its_bytes_without_the_line_end(
    no_key_env: pytest.MonkeyPatch, tmp_path: Path, content: bytes, key: bytes
) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    assert load_key(path) == key


def test_a_short_or_missing_key_names_its_source_never_the_key(
    no_key_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_key_env.setenv(KEY_ENV, "s" * 16)
    assert load_key() == b"s" * 16
    no_key_env.setenv(KEY_ENV, "secret-15-bytes")
    with pytest.raises(InvalidInput) as exc:
        load_key()
    assert str(exc.value) == f"journal.key: ${KEY_ENV}: shorter than 16 bytes"
    short = tmp_path / "short"
    short.write_bytes(b"secret-15-bytes\n")
    with pytest.raises(InvalidInput) as exc:
        load_key(short)
    assert str(exc.value) == f"journal.key: key file {str(short)!r}: shorter than 16 bytes"
    missing = tmp_path / "none"
    with pytest.raises(InvalidInput) as exc:
        load_key(missing)
    assert (
        str(exc.value) == f"journal.key_file: value {str(missing)!r}: cannot read: No such file or directory"
    )


# --- the anchor's text -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "shown"),
    [("x" * 80, "x" * 80), ("y" * 81, "y" * 77 + "..."), ("z" * 200, "z" * 77 + "...")],
)
def test_a_bad_anchor_is_shown_whole_up_to_80_characters(text: str, shown: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_anchor(text)
    assert str(exc.value) == (
        f"journal.expect_head: value {shown!r}: must be SEQ:HASH, 64 lower-case hex digits "
        "(what `ipsinfra journal head` printed)"
    )


# --- the verification walk: one outcome per kind of tampering ---------------------------------
def test_an_intact_chain_has_no_problems_and_no_notes() -> None:
    rows = _chain(3, KEY)
    walk = _walk(rows, KEY, Anchor(seq=2, hash=rows[1]["hash"]))
    assert (walk.problems, walk.notes, walk.checked, walk.macs_ok) == ([], [], 3, 3)
    assert (walk.last_seq, walk.last_hash) == (3, rows[2]["hash"])


def test_a_seq_that_is_not_a_number() -> None:
    rows = _chain(1)
    rows[0]["seq"] = "x1"
    assert _walk(rows).problems == ["seq 'x1': not a number (line edited)"]


def test_a_line_chained_to_no_line_of_the_journal() -> None:
    rows = _chain(1)
    rows.append(_stored(_fields(2, "f" * 64)))
    assert _walk(rows).problems == [
        "seq 2: prev_hash does not match seq 1's hash (line deleted, replaced or reordered)"
    ]


def test_a_line_chained_to_an_earlier_line_is_reordered() -> None:
    rows = _chain(2)
    rows.append(_stored(_fields(3, rows[0]["hash"])))
    assert _walk(rows).problems == ["seq 3: chained after seq 1, not seq 2 (lines reordered)"]


def test_an_anchor_on_a_deleted_line() -> None:
    rows = _chain(3)
    anchor = Anchor(seq=2, hash=rows[1]["hash"])
    del rows[1]
    problems = _walk(rows, anchor=anchor).problems
    assert problems[-2:] == [
        "seq 2: missing before seq 3 (line deleted)",
        "seq 2: the anchored line is missing (line deleted)",
    ]


def test_an_anchor_whose_line_was_rewritten() -> None:
    rows = _chain(2)
    anchor = Anchor(seq=2, hash="0123456789abcdef" * 4)
    assert _walk(rows, anchor=anchor).problems == [
        "seq 2: hash differs from the anchor's 0123456789ab... (chain rewritten since the anchor was taken)"
    ]


def test_every_line_keyed_leaves_no_note_about_earlier_lines() -> None:
    assert _walk(_chain(2, KEY), KEY).notes == []


def test_two_macs_under_another_key_are_one_finding() -> None:
    walk = _walk(_chain(2, b"o" * 32), KEY)
    assert walk.problems == ["no MAC matches the key (2 lines): a different key, or every keyed line forged"]
    assert walk.macs_ok == 0


def test_macs_without_the_key_are_counted_in_a_note() -> None:
    walk = _walk(_chain(3, KEY))
    assert walk.problems == []
    assert walk.notes == [
        f"3 line(s) carry a MAC, not checked: give the key (${KEY_ENV}, ${KEY_FILE_ENV} or --key-file)"
    ]


def test_a_json_column_that_is_not_json_under_the_key_is_a_finding() -> None:
    rows = _chain(2, KEY)
    rows[1]["before"] = "{not json"
    walk = _walk(rows, KEY)
    assert walk.problems == [
        "seq 2: content does not match its hash (line edited)",
        "seq 2: MAC does not match (line forged, or rewritten without the key)",
    ]
    assert walk.macs_ok == 1


def test_raise_on_error_joins_the_problems() -> None:
    report = VerifyReport(ok=False, checked=2, problems=["seq 1: a", "seq 2: b"])
    with pytest.raises(JournalTampered) as exc:
        report.raise_on_error()
    assert str(exc.value) == "seq 1: a; seq 2: b"
    VerifyReport(ok=True, checked=2, problems=[]).raise_on_error()


# --- the state rows against their lines ------------------------------------------------------
def _state_chain(values: list[tuple[str, Any]]) -> tuple[ChainWalk, list[dict[str, Any]]]:
    """One state.set line per (key, value), and the state rows naming them."""
    rows: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for seq, (key, value) in enumerate(values, start=1):
        rows.append(_stored(_fields(seq, prev, action=STATE_ACTION, target=key, before=None, after=value)))
        prev = rows[-1]["hash"]
    state = [
        {"id": seq, "key": key, "ts": TS, "value": canonical(value), "seq": seq}
        for seq, (key, value) in enumerate(values, start=1)
    ]
    return _walk(rows), state


def test_intact_state_rows() -> None:
    walk, state = _state_chain([("a", {"x": "é"}), ("b", None), ("c", "")])
    assert walk.check_state(state, chained=True) == 3
    assert walk.problems == []


@pytest.mark.parametrize("value", [None, "", {"x": 1}])
def test_a_state_value_edited_to_text_that_is_not_json(value: Any) -> None:
    walk, state = _state_chain([("a", value)])
    state[0]["value"] = "{edited"
    walk.check_state(state, chained=True)
    assert walk.problems == ["state row 1 (a): differs from its chained line seq 1 (row edited)"]


def test_each_bad_state_row_is_named_not_only_the_first() -> None:
    walk, state = _state_chain([("a", 1), ("b", 2), ("c", 3)])
    state[1]["seq"] = 1  # copied a's seq
    state[2]["value"] = "4"
    forged = {"id": 9, "key": "z", "ts": TS, "value": "1", "seq": 99}
    walk.check_state([state[0], forged, state[1], state[2]], chained=True)
    assert walk.problems == [
        "state row 9 (z): seq 99 is not a state line of the chain (row forged)",
        "state row 2 (b): names seq 1 like state row 1 (row copied)",
        "state row 3 (c): differs from its chained line seq 3 (row edited)",
        "seq 2: the state row this line wrote is missing (row deleted)",
    ]


def test_state_rows_out_of_the_chains_order() -> None:
    walk, state = _state_chain([("a", 1), ("b", 2)])
    walk.check_state([state[1], state[0]], chained=True)
    assert walk.problems == ["state row 1 (a): out of the chain's order (rows reordered)"]


def test_state_rows_of_a_journal_not_yet_chained_are_a_note() -> None:
    walk = _walk(_chain(1))
    rows = [{"id": 1, "key": "a", "ts": TS, "value": "1"}, {"id": 2, "key": "b", "ts": TS, "value": "2"}]
    assert walk.check_state(rows, chained=False) == 2
    assert walk.problems == []
    assert walk.notes == [
        "2 state row(s) from before the state was chained: not checked "
        "until a writer opens this journal (it records their digest)"
    ]


def test_a_migrate_line_that_recorded_no_digest() -> None:
    line = _stored(_fields(1, GENESIS_HASH, action=MIGRATE_ACTION, before=None, after=None))
    walk = _walk([line])
    walk.check_state([{"id": 1, "key": "a", "ts": TS, "value": "1", "seq": None}], chained=True)
    assert walk.problems == [
        "state rows from before the chain: 1 now, not the None seq 1 recorded (rows edited, added or deleted)"
    ]
