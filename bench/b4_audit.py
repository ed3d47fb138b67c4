"""B4: the nightly audit over many nodes with 20 ms RTT; B6: its peak memory at 10k VDS.

B4's backend is latency-injecting and in-process (a real network namespace per
node is not feasible for 200 nodes on a 2-core machine): every node is its own
libvirt test-driver connection wrapped in :class:`bench.hyper.RpcConn`, which
sleeps one RTT per libvirt RPC (list_vds: 2 + one XMLDesc per domain; the boot
reader's node_facts: 2), and each window of reachability probes (§4.10; all of
a window's connects are in flight at once) sleeps one RTT (the
TCP handshake) before a real connect to a loopback listener. The sleeps stand
in for the network and live only in the benchmark.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.core import Row, median, row, timed
from bench.hyper import RpcConn, filled_driver, node_file, node_model
from ipsinfra.audit.run import run as audit_run
from ipsinfra.audit.run import tcp_probe_many
from ipsinfra.hypervisors import DriverPool, HypervisorDriver
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.inventory import Fleet
from ipsinfra.models import Node, Site, Vds

TODAY = dt.date(2026, 6, 1)


@contextlib.contextmanager
def loopback_listener() -> Iterator[str]:
    """A TCP listener on 127.0.0.1 that accepts and closes everything: the probes' target."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    stop = threading.Event()

    def loop() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        srv.close()


class Lab:
    """``nodes`` test-driver nodes x ``per_node`` domains behind an RTT per RPC."""

    def __init__(self, nodes: int, per_node: int, rtt_ms: float, tmp: Path) -> None:
        xml = node_file(tmp)
        self.rtt = rtt_ms / 1000
        self.nodes: dict[str, Node] = {}
        self.drivers: dict[str, HypervisorDriver] = {}
        records: dict[str, Vds] = {}
        for i in range(nodes):
            node = node_model(f"kvm{i + 1:03d}", i + 1, xml)
            plain = filled_driver(node, per_node, 1000 + i * per_node, running_every=1)
            for v in plain.list_vds():
                records[v.name] = v
            self.nodes[node.name] = node
            self.drivers[node.name] = LibvirtDriver(node, conn=RpcConn(plain.ex_conn, delay=self.rtt))
        self.fleet = Fleet(
            sites={"lab": Site(name="lab", dc="Lab DC")},
            nodes=self.nodes,
            vds=records,
        )
        self.pool = DriverPool(self.nodes, drivers=self.drivers)

    def audit(self, target: str, names: list[str] | None = None, max_workers: int | None = None) -> float:
        rtt = self.rtt

        def prober(where: Sequence[str], timeout: float) -> dict[str, str | None]:
            time.sleep(rtt)  # the TCP handshakes' round trip (all of the window in flight at once)
            return tcp_probe_many(where, timeout)

        kwargs: dict[str, Any] = {}
        if max_workers is not None:
            kwargs["max_workers"] = max_workers
        report = audit_run(
            self.fleet,
            self.pool,
            nodes=names,
            today=TODAY,
            reach=True,
            recheck_delay=0.0,
            prober=prober,
            probe_for=lambda observed, record: target,
            **kwargs,
        )
        assert all(n.reachable for n in report.nodes), [n.outcomes for n in report.nodes if not n.reachable]
        return report.duration_s


def b4_rows(nodes: int, per_node: int, rtt_ms: float, reps: int, sample: int) -> list[Row]:
    """audit.run (library default workers, and one worker per node) vs a sequential loop."""
    with tempfile.TemporaryDirectory(prefix="ipsb-b4-", dir="/var/tmp") as tmp, loopback_listener() as target:
        lab = Lab(nodes, per_node, rtt_ms, Path(tmp))
        names = list(lab.nodes)
        lab.audit(target, names[:2])  # warm-up
        seq_totals: list[float] = []
        per_node_times: list[float] = []
        default_runs: list[float] = []
        wide_runs: list[float] = []
        for rep in range(reps):
            chosen = [names[(rep * sample + k) % len(names)] for k in range(min(sample, len(names)))]
            times = [timed(lambda n=n: lab.audit(target, [n])) for n in chosen]  # type: ignore[misc]
            per_node_times += times
            seq_totals.append(sum(times) * len(names) / len(chosen))
            default_runs.append(timed(lambda: lab.audit(target)))
            wide_runs.append(timed(lambda: lab.audit(target, max_workers=len(names))))
        ideal = max(per_node_times)
        extrapolated = len(chosen) < len(names)
        seq_note = (
            f"sequential baseline = sum of {len(chosen)} nodes audited one at a time "
            f"x {len(names)}/{len(chosen)} "
            "(a different node sample each repetition; every node has the same load)"
            if extrapolated
            else "sequential baseline = every node audited one at a time"
        )
        model = (
            f"in-process latency model: {rtt_ms:g} ms per libvirt RPC ({per_node + 4} RPCs/node) "
            f"+ {rtt_ms:g} ms per window of TCP probes; real test-driver domains"
        )
        workload = f"audit {nodes} nodes x {per_node} VDS, {rtt_ms:g} ms RTT"
        rows = []
        for label, runs in (("default", default_runs), (f"workers={len(names)}", wide_runs)):
            workers = "library default max_workers" if label == "default" else f"max_workers={len(names)}"
            r = row(
                f"B4.sequential.{label}",
                f"{workload}, audit.run {workers}",
                seq_totals,
                runs,
                kind="speedup",
                limit=50.0,
                baseline="sequential loop, one node at a time",
                notes=f"{seq_note}; {model}",
                extra={"sample_nodes": len(chosen), "extrapolated": extrapolated},
            )
            rows.append(r)
            rows.append(
                row(
                    f"B4.ideal.{label}",
                    f"{workload}, audit.run {workers} vs slowest single node alone",
                    [ideal] * len(runs),
                    runs,
                    kind="overhead",
                    limit=1.5,
                    baseline="ideal bound: slowest node's own time",
                    target="<= 1.5 x ideal bound",
                    notes=f"ideal = max of {len(per_node_times)} single-node audits "
                    f"(median single node {median(per_node_times):.3f} s)",
                )
            )
        lab.pool.close()
        return rows


# --- B6: memory ---------------------------------------------------------------------


class _StubDom:
    def __init__(self, index: int, render: Callable[[int], str], name: str) -> None:
        self._i, self._render, self._name = index, render, name

    def name(self) -> str:
        return self._name

    def XMLDesc(self, flags: int = 0) -> str:  # libvirt's name
        return self._render(self._i)


class _StubConn:
    """A virConnect stand-in serving real test-driver domain XML, rendered per call.

    Its own memory is a few bytes per domain, so the child's peak RSS is the
    audit's, not a hypervisor's (libvirt's test driver would hold every domain
    in the measured process).
    """

    def __init__(self, first: int, count: int, template: str, names: list[str]) -> None:
        self._template = template
        self._doms = [_StubDom(first + k, self._xml, names[k]) for k in range(count)]
        self._names = names
        self._first = first

    def _xml(self, i: int) -> str:
        k = i - self._first
        return (
            self._template.replace("@NAME@", self._names[k])
            .replace("@UUID@", f"00000000-0000-4000-8000-{i:012d}")
            .replace("@MAC@", f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}")
        )

    def getAllDomainStats(self, stats: int, flags: int) -> list[tuple[_StubDom, dict[str, int]]]:
        return [(d, {"state.state": 1, "state.reason": 1}) for d in self._doms]

    def listAllDomains(self, flags: int = 0) -> list[_StubDom]:
        return list(self._doms)

    def getHostname(self) -> str:
        return "stub"

    def getInfo(self) -> list[Any]:
        return ["x86_64", 65536, 8, 2400, 1, 1, 8, 1]

    def close(self) -> int:
        return 0


def _vm_hwm_mb() -> tuple[float, float]:
    status = Path("/proc/self/status").read_text()
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def b6_child(total: int, per_node: int) -> dict[str, Any]:
    """Runs in a fresh process: build a fleet of ``total`` VDS, audit it, report RSS."""
    from bench.hyper import spec

    with tempfile.TemporaryDirectory(prefix="ipsb-b6-", dir="/var/tmp") as tmp:
        xml = node_file(Path(tmp))
        probe_node = node_model("tmpl", 999, xml)
        driver = LibvirtDriver(probe_node)
        s = spec(probe_node, 77, autostart=True)
        driver.define(s, start=True)
        real = driver.ex_xml(s.name)
        uuid = driver.ex_conn.lookupByName(s.name).UUIDString()
        template = real.replace(s.name, "@NAME@").replace(uuid, "@UUID@").replace(s.nics[0].mac, "@MAC@")
        driver.close()
        nodes: dict[str, Node] = {}
        drivers: dict[str, HypervisorDriver] = {}
        records: dict[str, Vds] = {}
        count = max(1, total // per_node)
        for n in range(count):
            node = node_model(f"kvm{n + 1:04d}", n + 1, xml)
            first = 100000 + n * per_node
            names = [spec(node, first + k, autostart=True).name for k in range(per_node)]
            conn = _StubConn(first, per_node, template, names)
            drv = LibvirtDriver(node, conn=conn)
            nodes[node.name] = node
            drivers[node.name] = drv
            for v in drv.list_vds():
                records[v.name] = v
        fleet = Fleet(sites={"lab": Site(name="lab", dc="Lab DC")}, nodes=nodes, vds=records)
        pool = DriverPool(nodes, drivers=drivers)
        import gc

        gc.collect()
        rss_before, _ = _vm_hwm_mb()
        started = time.perf_counter()
        report = audit_run(
            fleet,
            pool,
            today=TODAY,
            reach=True,
            recheck_delay=0.0,
            prober=lambda targets, timeout: dict.fromkeys(targets),
            probe_for=lambda observed, record: "127.0.0.1:22",
        )
        elapsed = time.perf_counter() - started
        _, hwm = _vm_hwm_mb()
        return {
            "vds": sum(n.vds_total for n in report.nodes),
            "nodes": len(report.nodes),
            "rss_before_mb": round(rss_before, 1),
            "peak_rss_mb": round(hwm, 1),
            "audit_s": round(elapsed, 3),
            "findings": len(report.findings),
        }


def b6_rows(total: int, per_node: int, reps: int, limit_mb: float = 300.0) -> list[Row]:
    root = str(Path(__file__).resolve().parents[1])
    results = []
    for _ in range(reps):
        proc = subprocess.run(
            [sys.executable, "-m", "bench.b4_audit", "b6-child", str(total), str(per_node)],
            capture_output=True,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": root},
            timeout=900,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"B6 child failed: {proc.stderr[-2000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    before = [r["rss_before_mb"] for r in results]
    peak = [r["peak_rss_mb"] for r in results]
    assert all(r["vds"] == results[0]["vds"] for r in results)
    p = median(peak)
    return [
        Row(
            id=f"B6.audit-memory.{results[0]['vds']}",
            workload=(
                f"audit.run peak RSS, {results[0]['nodes']} nodes x {per_node} VDS = {results[0]['vds']} VDS"
            ),
            unit="MB",
            baseline_median=round(median(before), 1),
            ipsinfra_median=round(p, 1),
            ratio=round(p / limit_mb, 3),
            ratio_kind="peak/limit",
            target=f"< {limit_mb:g} MB peak RSS",
            limit=limit_mb,
            direction="lower",
            passed=p < limit_mb,
            baseline_runs=before,
            ipsinfra_runs=peak,
            baseline="RSS of the same process before the audit (fleet + drivers loaded)",
            notes=(
                "VmHWM of a fresh subprocess; backend = a stub virConnect serving real test-driver "
                "domain XML "
                f"(its own memory is negligible); audit took {median([r['audit_s'] for r in results]):.2f} s"
            ),
            extra={"children": results},
        )
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "b6-child":
        print(json.dumps(b6_child(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        raise SystemExit("usage: python -m bench.b4_audit b6-child TOTAL PER_NODE")
