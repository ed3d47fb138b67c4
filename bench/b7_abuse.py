"""B7: complaint intake + classification throughput, and the worst hostile complaint.

Throughput: a few thousand complaints generated from the corpus
(``tests/data/complaints``), each with its own IPs and text: every IPv4
address a sample names is replaced by one unique to the complaint, the
Subject and Message-ID carry its number, and a single-part body gets one more
sentence. ipsinfra's side is what the abuse desk does with each:
:func:`~ipsinfra.abuse.parse_complaint` then :func:`~ipsinfra.abuse.classify`;
the baseline is Python's ``email.message_from_bytes(policy=default)`` alone on
the same bytes, in the same process, runs interleaved. One core: both sides
run in this one thread. The row checks its work: in every run, every complaint
gave exactly the targets its sample names, mapped to the complaint's own IPs
(a side that drops complaints or targets is not faster, it is wrong).

Hostile shapes (:data:`tests.unit.hostile_mail.HOSTILE_SHAPES`: 1 MiB and
~5 MiB of blank lines, of ``<``, of IPs, deep MIME nesting, a YAML alias
bomb...): each one's wall time (best of the runs; the machine is shared) and
its tracemalloc peak in a separate run. Two rows: the worst time against 1 s,
the worst peak against 200 MB; every shape's figures are in ``extra``.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.unit.hostile_mail import HOSTILE_SHAPES

from bench.core import Row, Work, check_work, compare_work, cpu_seconds, expect_work, row, work
from ipsinfra.abuse import classify, parse_complaint
from ipsinfra.abuse.targets import _is_noise
from ipsinfra.errors import IpsinfraError

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "complaints"
TARGET_PER_S = 300.0  # complaints per second on one core (issue 21)
RATIO_LIMIT = 6.0  # ipsinfra / email parser alone
HOSTILE_SECONDS = 1.0
HOSTILE_MB = 200.0

_IPV4_RE = re.compile(rb"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_SENTENCES = (
    "We kindly ask you to investigate this incident.",
    "Please take the necessary measures to stop this activity.",
    "This is an automated notice; replies are read by a person.",
    "Просим принять меры и сообщить о результатах.",
    "Logs are attached below for your reference.",
    "The activity was observed repeatedly over the last hours.",
)


def _samples() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.iterdir()) if p.suffix in (".eml", ".txt")]


def _unique_ip(n: int, k: int) -> str:
    """The k-th IP of complaint n: 198.18.0.0/15 (benchmarking, never noise), distinct per (n, k)."""
    value = int(ipaddress.IPv4Address("198.18.0.0")) + ((n * 8 + k) % (1 << 17))
    return str(ipaddress.IPv4Address(value))


def _vary(raw: bytes, n: int, *, ips: bool = True, text: bool = True) -> tuple[bytes, dict[str, str]]:
    """Complaint ``n`` from sample ``raw``: its own IPs (unless ``ips`` is False),
    Subject, Message-ID and (unless ``text`` is False) a sentence; and the IP mapping used."""
    mapping: dict[bytes, bytes] = {}
    if ips:
        for m in _IPV4_RE.finditer(raw):
            old = m.group(0)
            try:
                addr = ipaddress.IPv4Address(old.decode())
            except ValueError:
                continue
            if old not in mapping and not _is_noise(addr):
                mapping[old] = _unique_ip(n, len(mapping)).encode()
    out = _IPV4_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), raw) if mapping else raw
    out = out.replace(b"Subject: ", f"Subject: [case {n}] ".encode(), 1)
    out = re.sub(rb"(?im)^(Message-ID:\s*<)", rb"\g<1>b7-" + str(n).encode() + b".", out, count=1)
    single = b"multipart/" not in out[:4096].lower()
    if text and single and b"content-transfer-encoding: base64" not in out.lower():
        out = out.rstrip(b"\r\n") + f"\n{_SENTENCES[n % len(_SENTENCES)]} (#{n})\n".encode()
    return out, {k.decode(): v.decode() for k, v in mapping.items()}


def _targets_of(raw: bytes) -> tuple[str, ...] | None:
    try:
        c = parse_complaint(raw)
    except IpsinfraError:
        return None
    return tuple(sorted(str(x) for x in (*c.ips, *c.networks)))


def _how_to_vary(raw: bytes, want: tuple[str, ...] | None) -> dict[str, bool]:
    """The most a sample can be varied with its targets still predictable (checked on variant 0)."""
    for how in ({"ips": True, "text": True}, {"ips": True, "text": False}, {"ips": False, "text": True}):
        variant, mapping = _vary(raw, 0, **how)
        if want is not None and _targets_of(variant) == tuple(sorted(mapping.get(t, t) for t in want)):
            return how
    return {"ips": False, "text": False}


def corpus(count: int) -> tuple[list[bytes], list[tuple[str, ...]]]:
    """``count`` complaints and, for each, the targets intake must find (sorted strings).

    The expected targets are those of the sample it was made from, each mapped to
    the complaint's own IP. A sample whose IPs cannot all be replaced in its bytes
    (ranges and networks, addresses inside base64 or an archive) keeps its IPs,
    one whose format takes no added sentence (an XML report) keeps its text:
    checked once per sample, on a first variant.
    """
    samples = _samples()
    expected_of_sample = [_targets_of(s) or () for s in samples]
    how = [_how_to_vary(raw, want) for raw, want in zip(samples, expected_of_sample, strict=True)]
    complaints: list[bytes] = []
    expected: list[tuple[str, ...]] = []
    for n in range(count):
        i = n % len(samples)
        raw, mapping = _vary(samples[i], n, **how[i])
        complaints.append(raw)
        expected.append(tuple(sorted(mapping.get(t, t) for t in expected_of_sample[i])))
    return complaints, expected


def _targets(complaint: Any) -> str:
    return " ".join(sorted(str(x) for x in (*complaint.ips, *complaint.networks)))


def throughput_row(count: int, reps: int, *, warmup: bool = True) -> Row:
    complaints, expected = corpus(count)
    policy = email.policy.default
    expected_items = [f"{n} {' '.join(t)}" for n, t in enumerate(expected)]

    def baseline() -> list[str]:
        done = []
        for n, raw in enumerate(complaints):
            email.message_from_bytes(raw, policy=policy)
            done.append(str(n))
        return done

    def ours() -> list[str]:
        done = []
        for n, raw in enumerate(complaints):
            complaint = parse_complaint(raw)
            classify(complaint, complaint.received_at)
            done.append(f"{n} {_targets(complaint)}")
        return done

    if warmup:
        baseline()
        ours()
    base_s: list[float] = []
    ours_s: list[float] = []
    ours_cpu: list[float] = []
    base_work: list[Work] = []
    ours_work: list[Work] = []
    targets_work: list[Work] = []
    for _ in range(reps):
        started = time.perf_counter()
        got = baseline()
        base_s.append(time.perf_counter() - started)
        base_work.append(work(got))
        cpu = cpu_seconds()
        started = time.perf_counter()
        got = ours()
        ours_s.append(time.perf_counter() - started)
        ours_cpu.append(cpu_seconds() - cpu)
        ours_work.append(work(x.split(" ", 1)[0] for x in got))
        right = [x for x, want in zip(got, expected_items, strict=True) if x.rstrip() == want.rstrip()]
        targets_work.append(work(right))
    per_s = count / statistics.median(ours_s)
    per_cpu_s = count / statistics.median(ours_cpu)
    r = row(
        f"B7.intake.{count}",
        f"parse_complaint + classify, {count} complaints generated from the {len(_samples())}-sample corpus "
        "(unique IPs, Subject, Message-ID, text), one thread",
        base_s,
        ours_s,
        kind="overhead",
        limit=RATIO_LIMIT,
        baseline="email.message_from_bytes(policy=default) alone, same bytes",
        target=f">= {TARGET_PER_S:g} complaints/s on one core; ipsinfra/email <= {RATIO_LIMIT:g}",
        extra={
            "complaints": count,
            "complaints_per_s": round(per_s, 1),
            "complaints_per_cpu_s": round(per_cpu_s, 1),
            "email_parser_per_s": round(count / statistics.median(base_s), 1),
            "ipsinfra_cpu_s": [round(c, 4) for c in ours_cpu],
        },
    )
    r.passed = r.passed and per_s >= TARGET_PER_S
    r.notes = (
        f"{per_s:.0f} complaints/s wall ({per_cpu_s:.0f} per CPU second), the email parser alone "
        f"{count / statistics.median(base_s):.0f}/s"
    )
    return check_work(
        r,
        compare_work("complaints parsed", base_work, ours_work, expected=count),
        expect_work("complaints with exactly their targets", targets_work, count),
    )


def _outcome(raw: bytes) -> str:
    try:
        complaint = parse_complaint(raw)
        classify(complaint, complaint.received_at)
    except IpsinfraError as exc:
        return f"refused: {type(exc).__name__}: {exc}"[:160]
    return f"parsed: {len(complaint.ips)} IPs, {len(complaint.truncated)} limit notes"


def _email_alone(raw: bytes) -> None:
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        msg.get_content_type()  # what any reader asks first
    except RecursionError:  # the stdlib's own answer to 12,000 Content-Type parameters
        pass


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _timed_cpu(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call: on a shared machine the
    wall time includes waiting for a core, the CPU time does not."""
    cpu, started = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - started, time.process_time() - cpu


def _peak_mb(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def hostile_rows(reps: int, names: list[str] | None = None) -> list[Row]:
    """Two rows: the worst wall time (best of ``reps`` per shape) and the worst tracemalloc peak."""
    shapes = {n: HOSTILE_SHAPES[n] for n in (names or list(HOSTILE_SHAPES))}
    per: dict[str, dict[str, Any]] = {}
    for name, build in shapes.items():
        raw = build()
        outcome = _outcome(raw)  # also the warm-up
        runs = [_timed_cpu(lambda raw=raw: _outcome(raw)) for _ in range(reps)]  # type: ignore[misc]
        ours = min(wall for wall, _ in runs)
        theirs = min(_timed(lambda raw=raw: _email_alone(raw)) for _ in range(reps))  # type: ignore[misc]
        per[name] = {
            "bytes": len(raw),
            "seconds": round(ours, 4),
            "cpu_seconds": round(min(cpu for _, cpu in runs), 4),
            "email_parser_seconds": round(theirs, 4),
            "peak_mb": round(_peak_mb(lambda raw=raw: _outcome(raw)), 1),  # type: ignore[misc]
            "email_parser_peak_mb": round(_peak_mb(lambda raw=raw: _email_alone(raw)), 1),  # type: ignore[misc]
            "outcome": outcome,
        }
    slowest = max(per, key=lambda n: per[n]["seconds"])
    biggest = max(per, key=lambda n: per[n]["peak_mb"])
    table = "; ".join(
        f"{n} {v['seconds']:.3f} s ({v['cpu_seconds']:.3f} CPU) {v['peak_mb']:.0f} MB" for n, v in per.items()
    )
    outcomes = {n: v["outcome"] for n, v in per.items()}
    rows = []
    for rid, unit, key, limit, worst in (
        ("B7.hostile-time", "s", "seconds", HOSTILE_SECONDS, slowest),
        ("B7.hostile-memory", "MB", "peak_mb", HOSTILE_MB, biggest),
    ):
        value = per[worst][key]
        base = per[worst][f"email_parser_{key}"]
        rows.append(
            Row(
                id=rid,
                workload=f"worst of {len(per)} hostile complaints ({worst}), parse_complaint + classify",
                unit=unit,
                baseline_median=base,
                ipsinfra_median=value,
                ratio=round(value / limit, 3),
                ratio_kind="worst/limit",
                target=f"< {limit:g} {unit} for every shape",
                limit=limit,
                direction="lower",
                passed=value < limit,
                baseline_runs=[base],
                ipsinfra_runs=[value],
                baseline="email.message_from_bytes(policy=default) alone on the same shape",
                notes=(
                    f"worst {worst}: {value} {unit}; time is the best of {reps} runs, memory the "
                    f"tracemalloc peak of one more; per shape: {table}"
                ),
                extra={"shapes": per, "outcomes": outcomes},
            )
        )
    return rows


def b7_rows(
    count: int, reps: int, *, hostile_reps: int, near_limit: bool = True, warmup: bool = True
) -> list[Row]:
    """The throughput row and the two hostile rows; ``near_limit`` False leaves out the
    ~5 MiB shapes (the smoke run: each costs seconds under tracemalloc)."""
    names = [n for n in HOSTILE_SHAPES if near_limit or not n.endswith("_5mib")]
    return [throughput_row(count, reps, warmup=warmup), *hostile_rows(hostile_reps, names)]
