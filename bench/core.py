"""Measuring: interleaved runs, medians, one table row per workload, JSON out."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

Direction = Literal["lower", "higher"]


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
    gc.collect()
    cpu = cpu_seconds()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started, cpu_seconds() - cpu


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
                "PASS" if r.passed else "FAIL",
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
    data = {"meta": meta, "results": [dataclasses.asdict(r) for r in rows]}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
