"""``python -m bench``: run B1-B7, print the table, write JSON.

Full run (for people; 20-40 min on 2 busy cores)::

    .venv/bin/python -m bench

Smoke run (CI; tiny counts, one repetition, under a minute)::

    .venv/bin/python -m bench --smoke --json /tmp/bench.json

A run whose figures are to be cited (README, an issue note) is saved where it
can be committed, with the commit it measured::

    .venv/bin/python -m bench --only B3 --save    # bench/saved/<date>-<mode>-<ids>.json

Every row also compares the work both sides did (VDS listed, MACs collected,
tasks ok); a row whose sides differ is a FAIL naming the difference, and the
run exits 1 (a benchmark that measured different work is wrong, not slow).

B1, B2 and B5 need root (sshd test hosts, network namespaces), B6 root and
libvirtd (a session daemon holds its domains); without them they are reported
as skipped in the JSON ``skipped`` list, never silently dropped. B7 (abuse
complaint intake, :mod:`bench.b7_abuse`) needs nothing but this process.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.core import Row, table, write_json
from bench.netlab import netns_available

RESULTS = Path(__file__).resolve().parent / "results"  # scratch runs (git-ignored)
SAVED = Path(__file__).resolve().parent / "saved"  # runs cited in README or notes (committed)


@dataclasses.dataclass(frozen=True)
class Plan:
    reps: int
    rtt_ms: float
    ssh_hosts: int
    b1_tasks: tuple[str, ...]
    b2_playbook: str
    libvirt_counts: tuple[int, ...]
    libvirt_rpc_ms: float
    libvirt_ssh: tuple[tuple[float, tuple[int, ...], int], ...]  # (RTT ms, domain counts, reps)
    pve_vms: int
    pve_nodes: int
    audit_nodes: int
    audit_per_node: int
    audit_sample: int
    switches: int
    switch_macs: tuple[int, ...]
    switch_default_workers: bool
    memory_vds: int
    complaints: int
    hostile_reps: int
    hostile_near_limit: bool  # also the ~5 MiB hostile shapes (seconds each under tracemalloc)
    warmup: bool


FULL = Plan(
    reps=5,
    rtt_ms=20.0,
    ssh_hosts=8,
    b1_tasks=("one_task", "ten_tasks"),
    b2_playbook="ten_tasks",
    libvirt_counts=(100, 1000),
    libvirt_rpc_ms=1.0,
    # 20 ms x 1000: the naive baseline alone takes ~90 s per run, hence 3 runs.
    libvirt_ssh=((1.0, (100, 1000), 5), (20.0, (1000,), 3)),
    pve_vms=1000,
    pve_nodes=5,
    audit_nodes=200,
    audit_per_node=40,
    audit_sample=10,
    switches=20,
    switch_macs=(500, 10000),
    switch_default_workers=True,
    memory_vds=10000,
    complaints=3000,
    hostile_reps=3,
    hostile_near_limit=True,
    warmup=True,
)
SMOKE = Plan(
    reps=1,
    rtt_ms=20.0,
    ssh_hosts=2,
    b1_tasks=("one_task",),
    b2_playbook="one_task",
    libvirt_counts=(20,),
    libvirt_rpc_ms=1.0,
    libvirt_ssh=((20.0, (10,), 1),),
    pve_vms=50,
    pve_nodes=2,
    audit_nodes=10,
    audit_per_node=5,
    audit_sample=10,
    switches=4,
    switch_macs=(50,),
    switch_default_workers=False,
    memory_vds=1000,
    complaints=200,
    hostile_reps=1,
    hostile_near_limit=False,
    warmup=False,
)
ALL = ("B1", "B2", "B3", "B4", "B5", "B6", "B7")


def run(
    plan: Plan, only: set[str], checkpoint: Callable[[list[Row], list[dict[str, str]]], None]
) -> tuple[list[Row], list[dict[str, str]]]:
    """Run the chosen benchmarks; a benchmark that fails is reported in ``skipped`` with its error."""
    rows: list[Row] = []
    skipped: list[dict[str, str]] = []
    no_netns = netns_available()

    def step(ids: tuple[str, ...], needs_root: bool, fn: Any) -> None:
        wanted = [i for i in ids if i in only]
        if not wanted:
            return
        if needs_root and no_netns:
            skipped.extend({"id": i, "reason": no_netns} for i in wanted)
            return
        started = time.monotonic()
        print(f"== {'/'.join(wanted)} ...", file=sys.stderr, flush=True)
        try:
            got = fn(set(wanted))
        except Exception as exc:
            traceback.print_exc()
            skipped.extend({"id": i, "reason": f"failed: {type(exc).__name__}: {exc}"} for i in wanted)
            checkpoint(rows, skipped)
            return
        rows.extend(got)
        checkpoint(rows, skipped)
        print(
            f"   {'/'.join(wanted)} done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True
        )

    def ansible(wanted: set[str]) -> list[Row]:
        from bench import b1_b2_ansible as a

        return a.ansible_rows(
            plan.ssh_hosts,
            plan.reps,
            plan.rtt_ms,
            b1="B1" in wanted,
            b2="B2" in wanted,
            b1_tasks=plan.b1_tasks,
            b2_playbook=plan.b2_playbook,
            warmup=plan.warmup,
        )

    def inventory(wanted: set[str]) -> list[Row]:
        from bench import b3_inventory as b3

        return (
            b3.libvirt_rows(list(plan.libvirt_counts), plan.reps, warmup=plan.warmup)
            + b3.libvirt_rows(
                [max(plan.libvirt_counts)], plan.reps, rpc_delay_ms=plan.libvirt_rpc_ms, warmup=plan.warmup
            )
            + b3.proxmox_rows(plan.pve_vms, plan.pve_nodes, plan.reps, warmup=plan.warmup)
            + libvirt_ssh(b3)
        )

    def libvirt_ssh(b3: Any) -> list[Row]:
        if no_netns:  # the SSH side needs root and a namespace; the other B3 rows do not
            skipped.append({"id": "B3.libvirt-ssh", "reason": no_netns})
            return []
        rows: list[Row] = []
        for rtt, counts, reps in plan.libvirt_ssh:
            rows += b3.libvirt_ssh_rows(list(counts), reps, rtt_ms=rtt, warmup=plan.warmup and rtt < 5)
        return rows

    def audit(wanted: set[str]) -> list[Row]:
        from bench import b4_audit as b4

        return b4.b4_rows(plan.audit_nodes, plan.audit_per_node, plan.rtt_ms, plan.reps, plan.audit_sample)

    def switches(wanted: set[str]) -> list[Row]:
        from bench import b5_switches as b5

        return b5.b5_rows(
            plan.switches,
            list(plan.switch_macs),
            plan.rtt_ms,
            plan.reps,
            default_workers=plan.switch_default_workers,
        )

    def memory(wanted: set[str]) -> list[Row]:
        from bench import b4_audit as b4

        return b4.b6_rows(plan.memory_vds, 40, plan.reps)

    def abuse(wanted: set[str]) -> list[Row]:
        from bench import b7_abuse as b7

        return b7.b7_rows(
            plan.complaints,
            plan.reps,
            hostile_reps=plan.hostile_reps,
            near_limit=plan.hostile_near_limit,
            warmup=plan.warmup,
        )

    step(("B1", "B2"), True, ansible)
    step(("B3",), False, inventory)
    step(("B4",), False, audit)
    step(("B5",), True, switches)
    if "B6" in only and (no_lab := lab_unavailable()):
        skipped.append({"id": "B6", "reason": no_lab})
    else:
        step(("B6",), False, memory)
    step(("B7",), False, abuse)
    return rows, skipped


def lab_unavailable() -> str | None:
    """None if a session libvirtd (B6's backend) can run here, else why not."""
    from ipsinfra.lab.libvirtd import LabUnavailable, check_requirements

    try:
        check_requirements()
    except LabUnavailable as exc:
        return str(exc)
    return None


def git_state() -> dict[str, Any]:
    """The commit the run measured and how many tracked files differed from it (read-only git:
    ``--no-optional-locks`` keeps ``git status`` from rewriting the index)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args], cwd=root, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    return {"commit": git("rev-parse", "HEAD") or None, "changed_files": len(changed)}


def saved_path(smoke: bool, only: set[str]) -> Path:
    """``bench/saved/<date>-<mode>-<ids>.json``, e.g. ``2026-12-06-full-B3-B5.json``."""
    ids = "all" if only == set(ALL) else "-".join(sorted(only))
    return SAVED / f"{dt.date.today().isoformat()}-{'smoke' if smoke else 'full'}-{ids}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny counts, one repetition (CI)")
    parser.add_argument("--json", type=Path, help="where to write the JSON (default bench/results/<ts>.json)")
    parser.add_argument(
        "--save",
        nargs="?",
        const=True,
        type=Path,
        help="write the JSON where it is committed, to cite its figures: PATH, or by default "
        "bench/saved/<date>-<mode>-<ids>.json",
    )
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated ids, e.g. B3,B4")
    parser.add_argument("--reps", type=int, help="repetitions per side (default 5; smoke 1)")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    if args.reps:
        plan = dataclasses.replace(plan, reps=args.reps)
    only = {x.strip().upper() for x in args.only.split(",") if x.strip()}
    if unknown := only - set(ALL):
        parser.error(f"--only: unknown ids {sorted(unknown)} (known: {', '.join(ALL)})")
    if args.save is not None and args.json is not None:
        parser.error("--save and --json: choose one")
    started = time.monotonic()
    meta: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "smoke" if args.smoke else "full",
        "plan": dataclasses.asdict(plan),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "loadavg_start": os.getloadavg(),
        "git": git_state(),
        "saved": args.save is not None,
    }
    if args.save is not None and meta["git"]["changed_files"]:
        print(
            f"warning: saving a run of a work tree with {meta['git']['changed_files']} changed files; "
            "commit first so the JSON names the code it measured",
            file=sys.stderr,
        )
    if args.save is True:
        path = saved_path(args.smoke, only)
    elif args.save is not None:
        path = args.save
    else:
        path = args.json or RESULTS / f"{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}.json"

    def checkpoint(rows: list[Row], skipped: list[dict[str, str]]) -> None:
        meta["duration_s"] = round(time.monotonic() - started, 1)
        meta["loadavg_end"] = os.getloadavg()
        meta["skipped"] = skipped
        write_json(path, rows, meta)  # after every benchmark: a late failure keeps the earlier rows

    rows, skipped = run(plan, only, checkpoint)
    checkpoint(rows, skipped)
    print(table(rows))
    for s in skipped:
        print(f"skipped {s['id']}: {s['reason']}")
    differ = [r for r in rows if not r.work_same]
    for r in differ:
        print(f"WORK DIFFERS {r.id}: " + "; ".join(w["message"] for w in r.work if not w["same"]))
    print(
        f"\n{len(rows)} rows, {sum(r.passed for r in rows)} pass, {len(differ)} with different work; "
        f"{meta['duration_s']} s; JSON: {path}"
    )
    return 1 if differ or any(s["reason"].startswith("failed") for s in skipped) else 0


if __name__ == "__main__":
    raise SystemExit(main())
