"""Measuring: interleaved runs, medians, one table row per workload, JSON out.

A speed-up only counts when both sides did the same work: every timed run
returns what it did (the VDS it listed, the MACs it collected, the tasks that
ran ok), :class:`WorkLog` keeps a digest of it per run, and
:func:`compare_work` fails the row (:func:`check_work`) when the two sides
differ in any repetition, or when either side's count is not the fleet's.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import hashlib
import json
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

Direction = Literal["lower", "higher"]
T = TypeVar("T")


@dataclasses.dataclass
class Row:
    """One benchmark line.

    ``ratio`` is ``ipsinfra / baseline`` when ``ratio_kind`` is ``"ipsinfra/baseline"``
    (B1, B4's ideal bound: lower is better) and ``baseline / ipsinfra`` (a speed-up:
    higher is better) otherwise. ``passed`` compares it with ``limit``.
    """

    id: str
    workload: str
    unit: str
    baseline_median: float
    ipsinfra_median: float
    ratio: float
    ratio_kind: str
    target: str
    limit: float
    direction: Direction
    passed: bool
    baseline_runs: list[float]
    ipsinfra_runs: list[float]
    baseline: str = ""
    notes: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    work: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def work_same(self) -> bool:
        """Both sides did the same work in every check made (True when none was made)."""
        return all(w["same"] for w in self.work)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children reaped so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def cores() -> int:
    """CPUs this process may run on (what a CPU-bound run divides its CPU seconds by)."""
    return len(os.sched_getaffinity(0))


def cpu_floor(cpu_s: float, wall_limit: float) -> dict[str, float]:
    """What a run's own CPU seconds imply on this machine: ``cpu_s`` cannot take less
    than ``cpu_s / cores`` seconds, whatever the concurrency; against the wall time a
    target allows (``wall_limit``) that says whether the target is reachable here."""
    n = cores()
    floor = cpu_s / n
    return {
        "cpu_s": round(cpu_s, 2),
        "cores": n,
        "cpu_floor_s": round(floor, 3),
        "target_wall_s": round(wall_limit, 3),
        "floor_over_target": round(floor / wall_limit, 2) if wall_limit > 0 else float("inf"),
    }


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    return timed_cpu(fn)[0]


def timed_cpu(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its reaped children) of one call."""
    wall, cpu, _ = timed_cpu_call(fn)
    return wall, cpu


def timed_cpu_call(fn: Callable[[], T]) -> tuple[float, float, T]:
    """:func:`timed_cpu` and the call's return value."""
    gc.collect()
    cpu = cpu_seconds()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, cpu_seconds() - cpu, result


def timed_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, return value) of one call."""
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# --- the work each side did ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Work:
    """What one run did: how many items, a digest of them (sorted), and the items
    themselves when kept (the first run of each distinct outcome: to name what differs)."""

    count: int
    digest: str
    items: tuple[str, ...] | None = None


def work(items: Iterable[str]) -> Work:
    """The :class:`Work` of one run from the items it handled, e.g. ``"sw1 525400000001"``."""
    ordered = sorted(items)
    digest = hashlib.sha256("\n".join(ordered).encode()).hexdigest()[:16]
    return Work(len(ordered), digest, tuple(ordered))


class WorkLog:
    """The work of every run of one side, in order; items kept once per distinct outcome."""

    def __init__(self) -> None:
        self.runs: list[Work] = []

    def add(self, items: Iterable[str]) -> Work:
        w = work(items)
        if any(r.digest == w.digest for r in self.runs):
            w = dataclasses.replace(w, items=None)
        self.runs.append(w)
        return w


def _differences(a: Sequence[str], b: Sequence[str], limit: int = 3) -> tuple[list[str], list[str]]:
    ca, cb = collections.Counter(a), collections.Counter(b)
    return sorted((ca - cb).elements())[:limit], sorted((cb - ca).elements())[:limit]


def compare_work(
    what: str,
    baseline: Sequence[Work],
    ipsinfra: Sequence[Work],
    *,
    expected: int | None = None,
) -> dict[str, Any]:
    """Did both sides do the same work? Run ``i`` of each side is compared (the runs are
    interleaved); a side with a different number of runs is compared with the first
    baseline run. ``expected``: the count the fleet really has, which every run of both
    sides must reach (so both sides dropping the same items is caught too).

    Returns a JSON-able dict: ``same``, the counts per run, and ``message``, which
    names the first differences when ``same`` is False.
    """
    problems: list[str] = []
    if not baseline or not ipsinfra:
        problems.append(f"no runs (baseline {len(baseline)}, ipsinfra {len(ipsinfra)})")
    pairs = (
        list(zip(baseline, ipsinfra, strict=True))
        if len(baseline) == len(ipsinfra)
        else [(baseline[0], o) for o in ipsinfra]
        if baseline
        else []
    )
    kept = {w.digest: w.items for w in [*baseline, *ipsinfra] if w.items is not None}
    for i, (b, o) in enumerate(pairs, 1):
        if b.digest == o.digest:
            continue
        text = f"run {i}: baseline {b.count}, ipsinfra {o.count}"
        if b.digest in kept and o.digest in kept:
            only_b, only_o = _differences(kept[b.digest] or (), kept[o.digest] or ())
            text += f" (only baseline: {only_b}; only ipsinfra: {only_o})"
        problems.append(text)
    if expected is not None:
        for side, runs in (("baseline", baseline), ("ipsinfra", ipsinfra)):
            if bad := [w.count for w in runs if w.count != expected]:
                problems.append(f"{side} counted {bad}, the fleet has {expected}")
    same = not problems
    b_counts, o_counts = [w.count for w in baseline], [w.count for w in ipsinfra]
    return {
        "what": what,
        "same": same,
        "expected": expected,
        "baseline_counts": b_counts,
        "ipsinfra_counts": o_counts,
        "message": (
            f"{what}: baseline {_counts(b_counts)}, ipsinfra {_counts(o_counts)}, same in every run"
            if same
            else f"WORK DIFFERS, {what}: " + "; ".join(problems)
        ),
    }


def expect_work(what: str, runs: Sequence[Work], expected: int) -> dict[str, Any]:
    """One side's work against what the fleet really has (a row with no second side to compare)."""
    counts = [w.count for w in runs]
    same = bool(runs) and all(c == expected for c in counts)
    return {
        "what": what,
        "same": same,
        "expected": expected,
        "ipsinfra_counts": counts,
        "message": (
            f"{what}: {_counts(counts)} of {expected} in every run"
            if same
            else f"WORK DIFFERS, {what}: counted {counts}, the fleet has {expected}"
        ),
    }


def _counts(counts: list[int]) -> str:
    return str(counts[0]) if counts and len(set(counts)) == 1 else str(counts)


def check_work(r: Row, *checks: dict[str, Any]) -> Row:
    """Attach work checks to ``r``: one that differs makes the row FAIL, its message first in the notes."""
    r.work.extend(checks)
    if not r.work_same:
        r.passed = False
    failing = [c["message"] for c in checks if not c["same"]]
    passing = [c["message"] for c in checks if c["same"]]
    r.notes = "; ".join([*failing, *([r.notes] if r.notes else []), *passing])
    return r


def interleave_work(
    baseline: Callable[[], Any],
    ipsinfra: Callable[[], Any],
    reps: int,
    summarize: Callable[[Any], Iterable[str]],
    *,
    warmup: bool = True,
) -> tuple[list[float], list[float], WorkLog, WorkLog]:
    """:func:`interleave`, also keeping what every timed run did: ``summarize`` turns a
    run's return value into its items (outside the timed call)."""
    if warmup:
        baseline()
        ipsinfra()
    base: list[float] = []
    ours: list[float] = []
    base_work, our_work = WorkLog(), WorkLog()
    for _ in range(reps):
        for fn, times, log in ((baseline, base, base_work), (ipsinfra, ours, our_work)):
            wall, result = timed_call(fn)
            times.append(wall)
            log.add(summarize(result))
    return base, ours, base_work, our_work


def counted_runs(
    fn: Callable[[], T], *counters: Callable[[], int]
) -> tuple[Callable[[], T], list[tuple[int, ...]]]:
    """``fn``, also recording per call how much each counter (e.g. ``Calls.total``) grew
    during it; the list fills as the returned function is called."""
    per_run: list[tuple[int, ...]] = []

    def call() -> T:
        before = [c() for c in counters]
        got = fn()
        per_run.append(tuple(c() - b for c, b in zip(counters, before, strict=True)))
        return got

    return call, per_run


def interleave(
    baseline: Callable[[], object], ipsinfra: Callable[[], object], reps: int, *, warmup: bool = True
) -> tuple[list[float], list[float]]:
    """Seconds of ``reps`` runs each, alternating baseline, ipsinfra, baseline, ..."""
    if warmup:
        baseline()
        ipsinfra()
    base: list[float] = []
    ours: list[float] = []
    for _ in range(reps):
        base.append(timed(baseline))
        ours.append(timed(ipsinfra))
    return base, ours


def row(
    id: str,
    workload: str,
    base: list[float],
    ours: list[float],
    *,
    kind: Literal["speedup", "overhead"],
    limit: float,
    baseline: str,
    unit: str = "s",
    notes: str = "",
    extra: dict[str, Any] | None = None,
    target: str | None = None,
) -> Row:
    """A row from run lists.

    ``speedup``: baseline/ipsinfra >= limit; ``overhead``: ipsinfra/baseline <= limit.
    """
    b, o = median(base), median(ours)
    if kind == "speedup":
        ratio = b / o if o > 0 else float("inf")
        passed = ratio >= limit
        default_target = f">= {limit:g}x faster"
        ratio_kind, direction = "baseline/ipsinfra", "higher"
    else:
        ratio = o / b if b > 0 else float("inf")
        passed = ratio <= limit
        default_target = f"ipsinfra/baseline <= {limit:g}"
        ratio_kind, direction = "ipsinfra/baseline", "lower"
    return Row(
        id=id,
        workload=workload,
        unit=unit,
        baseline_median=round(b, 4),
        ipsinfra_median=round(o, 4),
        ratio=round(ratio, 3),
        ratio_kind=ratio_kind,
        target=target or default_target,
        limit=limit,
        direction=direction,  # type: ignore[arg-type]
        passed=passed,
        baseline_runs=[round(x, 4) for x in base],
        ipsinfra_runs=[round(x, 4) for x in ours],
        baseline=baseline,
        notes=notes,
        extra=dict(extra or {}),
    )


def table(rows: list[Row]) -> str:
    """A plain-text table (no colour: it goes into issue notes as is)."""
    head = ["id", "workload", "baseline", "ipsinfra", "ratio", "target", "result"]
    lines = [head]
    for r in rows:
        lines.append(
            [
                r.id,
                r.workload,
                f"{r.baseline_median:.3f} {r.unit}",
                f"{r.ipsinfra_median:.3f} {r.unit}",
                f"{r.ratio:.2f} ({r.ratio_kind})",
                r.target,
                "PASS" if r.passed else "FAIL" if r.work_same else "FAIL: work differs",
            ]
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.id}: {r.notes}" for r in rows if r.notes]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "results": [{**dataclasses.asdict(r), "work_same": r.work_same} for r in rows]}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
