"""B4: the nightly audit over many nodes with 20 ms RTT; B6: its peak memory at 10k VDS.

B4's backend is latency-injecting and in-process (a real network namespace per
node is not feasible for 200 nodes on a 2-core machine): every node is its own
libvirt test-driver connection wrapped in :class:`bench.hyper.RpcConn`, which
sleeps one RTT per libvirt RPC (list_vds: 2 + one XMLDesc per domain; the boot
reader's node_facts: 2), and each window of reachability probes (§4.10; all of
a window's connects are in flight at once) sleeps one RTT (the
TCP handshake) before a real connect to a loopback listener (its own process,
as the VDS are other machines). The sleeps stand in for the network and live
only in the benchmark. The test-driver connections live in this process's
memory, so the audit's forked worker processes keep using their copies (see
``HypervisorDriver.process_local``); remote connections would be opened anew.

B4 compares the work of both sides in every repetition: the VDS each node
listed and the findings, between the single-node audits of the sampled nodes
and the same nodes in the fleet run; and the fleet run must list every VDS of
the fleet. A row whose sides differ FAILS (:func:`bench.core.check_work`).

B6's domains live in a real session ``libvirtd`` (libvirt's test driver served
over its UNIX socket, one connection per node), so the measured process holds
only what the audit itself holds. B6 measures the audit as it runs at night,
reachability probes included: every running VDS is probed for real (a TCP
connect, ``tcp_probe_many``, the library's default prober) against a loopback
listener in its own process, which counts the connections it accepts; the row
fails unless every VDS was listed and every probe arrived.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.core import (
    Row,
    Work,
    WorkLog,
    check_work,
    compare_work,
    cores,
    cpu_floor,
    expect_work,
    median,
    row,
    timed_cpu_call,
)
from bench.hyper import (
    RpcConn,
    filled_driver,
    node_file,
    node_file_with_domains,
    node_model,
    remote_test_node,
    spec,
)
from ipsinfra import naming
from ipsinfra.audit.findings import AuditReport
from ipsinfra.audit.run import run as audit_run
from ipsinfra.audit.run import tcp_probe_many
from ipsinfra.hypervisors import DriverPool, HypervisorDriver
from ipsinfra.hypervisors.libvirt import LibvirtDriver
from ipsinfra.inventory import Fleet
from ipsinfra.lab.sshd import child_pids
from ipsinfra.models import Node, Site, Vds

TODAY = dt.date(2026, 6, 1)


_LISTENER = """
import selectors, socket, sys
ports = int(sys.argv[1])
servers = []
for _ in range(ports):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    srv.setblocking(False)
    servers.append(srv)
print(" ".join(str(s.getsockname()[1]) for s in servers), flush=True)
sel = selectors.DefaultSelector()
for srv in servers:
    sel.register(srv, selectors.EVENT_READ)
sel.register(sys.stdin, selectors.EVENT_READ)
accepted = 0

def drain(srv):
    global accepted
    while True:
        try:
            conn, _ = srv.accept()
        except BlockingIOError:
            return
        conn.close()
        accepted += 1

while True:
    for key, _ in sel.select():
        if key.fileobj is sys.stdin:
            if not sys.stdin.readline():
                sys.exit(0)
            for srv in servers:
                drain(srv)
            print(accepted, flush=True)
        else:
            drain(key.fileobj)
"""


class ProbeListener:
    """TCP listeners on 127.0.0.1 (``ports`` of them) that accept and close everything,
    counting the connections: the probes' targets, and an independent count of the
    probes that really arrived.

    Its own process, as the probed VDS are other machines: its accept loop must
    not take CPU time (or the interpreter lock) from the audit being measured.
    """

    def __init__(self, ports: int = 1) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LISTENER, str(ports)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.targets = [f"127.0.0.1:{p}" for p in self.proc.stdout.readline().split()]
        if len(self.targets) != ports:
            self.close()
            raise RuntimeError("the probe listener did not start")

    def accepted(self) -> int:
        """Connections accepted so far (its backlog drained first)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        """Stop it: end of its stdin ends it (killed if it does not); the pipes closed."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ProbeListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def loopback_listener() -> Iterator[str]:
    """One :class:`ProbeListener` port: the target every B4 probe goes to."""
    with ProbeListener() as listener:
        yield listener.targets[0]


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

    def audit(self, target: str, names: list[str] | None = None, processes: int | None = None) -> AuditReport:
        rtt = self.rtt

        def prober(where: Sequence[str], timeout: float) -> dict[str, str | None]:
            time.sleep(rtt)  # the TCP handshakes' round trip (all of the window in flight at once)
            return tcp_probe_many(where, timeout)

        kwargs: dict[str, Any] = {}
        if processes is not None:
            kwargs["processes"] = processes
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
        return report


def vds_listed(reports: Sequence[AuditReport], nodes: set[str] | None = None) -> list[str]:
    """The audit's work: one item per VDS a (reachable) node listed; ``nodes`` restricts it."""
    return [
        f"{n.node} VDS {i}"
        for report in reports
        for n in report.nodes
        if nodes is None or n.node in nodes
        for i in range(1, n.vds_total + 1)
    ]


def findings_of(reports: Sequence[AuditReport], nodes: set[str] | None = None) -> list[str]:
    """What the audit concluded: one item per finding (check, target)."""
    return [
        f"{f.node} {f.check} {f.target}"
        for report in reports
        for f in report.findings
        if nodes is None or f.node in nodes
    ]


def _default_processes(nodes: int) -> int:
    import importlib

    module = importlib.import_module("ipsinfra.audit.run")  # ipsinfra.audit.run is also the function
    return int(module._process_count(None, nodes, fix=False))


def b4_rows(nodes: int, per_node: int, rtt_ms: float, reps: int, sample: int) -> list[Row]:
    """audit.run (library defaults: worker processes; and threads in one process) vs a sequential loop."""
    with tempfile.TemporaryDirectory(prefix="ipsb-b4-", dir="/var/tmp") as tmp, loopback_listener() as target:
        lab = Lab(nodes, per_node, rtt_ms, Path(tmp))
        names = list(lab.nodes)
        lab.audit(target, names[:2])  # warm-up
        seq_totals: list[float] = []
        per_node_times: list[float] = []
        per_node_cpu: list[float] = []
        runs: dict[str, list[float]] = {"default": [], "processes=1": []}
        cpu: dict[str, list[float]] = {"default": [], "processes=1": []}
        # The work of each repetition: the sampled nodes audited alone (the baseline) vs the
        # same nodes in each fleet run, and the whole fleet in each fleet run.
        base_vds, base_findings = WorkLog(), WorkLog()
        ours_vds = {label: WorkLog() for label in runs}
        ours_findings = {label: WorkLog() for label in runs}
        fleet_vds = {label: WorkLog() for label in runs}
        for rep in range(reps):
            chosen = [names[(rep * sample + k) % len(names)] for k in range(min(sample, len(names)))]
            times = []
            alone: list[AuditReport] = []
            for n in chosen:
                wall, used, report = timed_cpu_call(functools.partial(lab.audit, target, [n]))
                alone.append(report)
                times.append(wall)
                per_node_cpu.append(used)
            per_node_times += times
            seq_totals.append(sum(times) * len(names) / len(chosen))
            base_vds.add(vds_listed(alone))
            base_findings.add(findings_of(alone))
            for label, processes in (("default", None), ("processes=1", 1)):
                wall, used, report = timed_cpu_call(functools.partial(lab.audit, target, processes=processes))
                got = [report]
                runs[label].append(wall)
                cpu[label].append(used)
                ours_vds[label].add(vds_listed(got, set(chosen)))
                ours_findings[label].add(findings_of(got, set(chosen)))
                fleet_vds[label].add(vds_listed(got))
        ideal = max(per_node_times)
        vds = len(names) * per_node
        alone_us = median(per_node_cpu) / per_node * 1e6
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
        shards = _default_processes(len(names))
        for label in ("default", "processes=1"):
            used = median(cpu[label])
            floor = cpu_floor(used, 1.5 * ideal)
            bound = (
                f"this run's own CPU: {used:.2f} CPU s ({used / vds * 1e6:.0f} us per VDS; "
                f"{alone_us:.0f} us per VDS for a node audited alone) needs >= {floor['cpu_floor_s']:.2f} s "
                f"on {floor['cores']} cores = {floor['floor_over_target']:.2f} x what <= 1.5 x ideal allows"
            )
            workers = (
                f"library defaults ({shards} worker processes on {cores()} CPUs)"
                if label == "default"
                else "processes=1 (threads only)"
            )
            r = row(
                f"B4.sequential.{label}",
                f"{workload}, audit.run {workers}",
                seq_totals,
                runs[label],
                kind="speedup",
                limit=50.0,
                baseline="sequential loop, one node at a time",
                notes=f"{seq_note}; {model}",
                extra={"sample_nodes": len(chosen), "extrapolated": extrapolated, "cpu_s": cpu[label]},
            )
            done = (
                compare_work(
                    f"VDS listed on the {len(chosen)} sampled nodes",
                    base_vds.runs,
                    ours_vds[label].runs,
                    expected=len(chosen) * per_node,
                ),
                compare_work("findings on the sampled nodes", base_findings.runs, ours_findings[label].runs),
                expect_work("VDS listed over the fleet (audit.run)", fleet_vds[label].runs, vds),
            )
            rows.append(check_work(r, *done))
            rows.append(
                check_work(
                    row(
                        f"B4.ideal.{label}",
                        f"{workload}, audit.run {workers} vs slowest single node alone",
                        [ideal] * len(runs[label]),
                        runs[label],
                        kind="overhead",
                        limit=1.5,
                        baseline="ideal bound: slowest node's own time",
                        target="<= 1.5 x ideal bound",
                        notes=f"ideal = max of {len(per_node_times)} single-node audits "
                        f"(median single node {median(per_node_times):.3f} s); {bound}",
                        extra={**floor, "cpu_s_runs": cpu[label], "cpu_us_per_vds_alone": round(alone_us)},
                    ),
                    *done,
                )
            )
        lab.pool.close()
        return rows


# --- B6: memory ---------------------------------------------------------------------

B6_FIRST_ORDER = 100000


def _b6_node_xml(directory: Path, n: int) -> Path:
    return directory / f"kvm{n + 1:04d}.xml"


def b6_setup(directory: Path, total: int, per_node: int) -> int:
    """Write ``total // per_node`` test-driver node files of ``per_node`` house domains each."""
    count = max(1, total // per_node)
    for n in range(count):
        path = _b6_node_xml(directory, n)
        node = node_model(f"kvm{n + 1:04d}", n + 1, path)
        first = B6_FIRST_ORDER + n * per_node
        node_file_with_domains(path, [spec(node, first + k, autostart=True) for k in range(per_node)])
    return count


def _vm_hwm_mb(pid: int | str = "self") -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def _memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process; PSS shares a page among the processes that map it."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"Rss", "Pss"}:
            values[key] = int(rest.split()[0]) / 1024
    return values["Rss"], values["Pss"]


class TreeSampler:
    """Samples this process plus its worker processes every ``interval`` s: the
    peak of the summed PSS (what the audit really holds, shared pages counted
    once) and of the summed RSS (an upper bound: a page shared after fork counts
    in every process)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_pss = self.peak_rss = 0.0
        self.max_workers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        rss = pss = 0.0
        kids = child_pids(me)  # the audit (b6_child's main thread) forks its workers
        for pid in [me, *kids]:
            try:
                r, p = _memory_mb(pid)
            except (OSError, KeyError):
                continue
            rss, pss = rss + r, pss + p
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.max_workers = max(self.max_workers, len(kids))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> TreeSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _reset_hwm() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0: ``5 > clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _b6_driver(node: Node) -> HypervisorDriver:
    """A real remote libvirt connection to ``node`` (``node.uri``), its domains set to autostart.

    The test driver keeps autostart per connection (its file format has none), so
    every connection sets it: the parent's, and each one an audit worker process
    opens anew. Without it a worker sees no VDS that should run, and probes none.
    """
    drv = LibvirtDriver(node)
    for dom in drv.ex_conn.listAllDomains(0):
        dom.setAutostart(1)
    return drv


def _logged_probe(log: Path, targets: Sequence[str], timeout: float) -> dict[str, str | None]:
    """``tcp_probe_many``, first appending how many distinct targets it is given to ``log``."""
    with log.open("a") as f:
        f.write(f"{len(set(targets))}\n")
    return tcp_probe_many(targets, timeout)


def b6_child(
    total: int, per_node: int, directory: Path, socket: Path, targets: list[str], probe_log: Path
) -> dict[str, Any]:
    """Runs in a fresh process: connect to every node's libvirtd connection, audit, report RSS.

    The audit probes for real (``tcp_probe_many``): VDS number ``k`` of a node is
    probed at ``targets[k % len(targets)]`` (distinct targets within a node, so
    no probe window merges two VDS into one connect). Every call of the prober,
    in this process or a forked worker, appends its distinct targets' count to
    ``probe_log``, to set against the connections the listener counted.

    Each node is its own ``test+unix://`` connection to the daemon at ``socket``;
    the daemon parses that node's file (from :func:`b6_setup`) when the connection
    opens, so the domains live in the daemon, not here. The test driver's state
    is per connection, hence autostart (not in its file format) is set over this
    process's own connections before measuring.
    """
    import gc

    started = time.perf_counter()
    count = max(1, total // per_node)
    nodes: dict[str, Node] = {}
    drivers: dict[str, HypervisorDriver] = {}
    records: dict[str, Vds] = {}
    for n in range(count):
        node = remote_test_node(f"kvm{n + 1:04d}", n + 1, _b6_node_xml(directory, n), socket)
        drv = _b6_driver(node)
        nodes[node.name] = node
        drivers[node.name] = drv
        for v in drv.list_vds():
            records[v.name] = v
    setup_s = time.perf_counter() - started
    fleet = Fleet(sites={"lab": Site(name="lab", dc="Lab DC")}, nodes=nodes, vds=records)
    pool = DriverPool(nodes, _b6_driver, drivers=drivers)  # a forked worker reopens through _b6_driver
    gc.collect()
    _, setup_hwm = _vm_hwm_mb()
    reset = _reset_hwm()  # the peak measured below is the audit's (fleet and connections loaded)
    rss_before, _ = _vm_hwm_mb()
    started = time.perf_counter()
    with TreeSampler() as tree:
        report = audit_run(
            fleet,
            pool,
            today=TODAY,
            reach=True,
            recheck_delay=0.0,
            prober=functools.partial(_logged_probe, probe_log),
            probe_for=lambda observed, record: targets[
                ((naming.order_of(observed.name) or 0) - B6_FIRST_ORDER) % len(targets)
            ],
        )
    elapsed = time.perf_counter() - started
    _, hwm = _vm_hwm_mb()
    pool.close()
    probed = sum(int(x) for x in probe_log.read_text().split()) if probe_log.exists() else 0
    return {
        "probes_sent": probed,
        "vds": sum(n.vds_total for n in report.nodes),
        "nodes": len(report.nodes),
        "reachable": sum(n.reachable for n in report.nodes),
        "rss_before_mb": round(rss_before, 1),
        "main_peak_rss_mb": round(hwm if reset else max(hwm, setup_hwm), 1),
        # The audit forks worker processes on a fleet this big: the peak is the
        # whole tree's. A forked child's RSS counts every page it still shares
        # with the parent, so summed RSS counts the fleet once per process; the
        # summed PSS splits a shared page among its sharers: what the tree holds.
        "peak_rss_mb": round(max(hwm if reset else max(hwm, setup_hwm), tree.peak_pss), 1),
        "tree_peak_pss_mb": round(tree.peak_pss, 1),
        "tree_peak_rss_sum_mb": round(tree.peak_rss, 1),
        "workers": tree.max_workers,
        "setup_peak_rss_mb": round(setup_hwm, 1),
        "hwm_reset": reset,
        "setup_s": round(setup_s, 3),
        "audit_s": round(elapsed, 3),
        "findings": len(report.findings),
    }


def b6_rows(total: int, per_node: int, reps: int, limit_mb: float = 300.0) -> list[Row]:
    """Peak RSS of a fresh process auditing ``total`` VDS held by a real session libvirtd,
    probing each VDS it would probe at night for real (TCP connects to a loopback listener)."""
    from ipsinfra.lab.libvirtd import LibvirtDaemon

    root = str(Path(__file__).resolve().parents[1])
    results = []
    daemon_peaks = []
    accepted: list[int] = []
    with (
        tempfile.TemporaryDirectory(prefix="ipsb-b6-", dir="/var/tmp") as tmp_name,
        ProbeListener(ports=per_node) as listener,
    ):
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # the daemon runs as nobody and reads the node files
        files = tmp / "nodes"
        files.mkdir(mode=0o755)
        files.chmod(0o755)
        b6_setup(files, total, per_node)
        with LibvirtDaemon("b6lv", tmp / "lv", index=152) as daemon:
            for rep in range(reps):
                probe_log = tmp / f"probes-{rep}.log"
                before_probes = listener.accepted()
                proc = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "bench.b4_audit",
                        "b6-child",
                        str(total),
                        str(per_node),
                        str(files),
                        str(daemon.socket_path),
                        ",".join(listener.targets),
                        str(probe_log),
                    ],
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
                accepted.append(listener.accepted() - before_probes)
                daemon_peaks.append(round(_vm_hwm_mb(daemon.libvirtd_pid())[1], 1))
    before = [r["rss_before_mb"] for r in results]
    peak = [r["peak_rss_mb"] for r in results]
    fleet = max(1, total // per_node) * per_node
    sent = [r["probes_sent"] for r in results]
    # Every B6 VDS runs with autostart on: the audit must probe each one, and each probe arrive.
    probes_same = all(s == a == fleet for s, a in zip(sent, accepted, strict=True))
    probes = {
        "what": "TCP probes",
        "same": probes_same,
        "expected": fleet,
        "ipsinfra_counts": accepted,
        "message": (
            f"TCP probes: the audit sent {_one(sent)}, the listener accepted {_one(accepted)} "
            f"(of {fleet} VDS)"
            if probes_same
            else f"WORK DIFFERS, TCP probes: the audit sent {sent}, the listener accepted {accepted}, "
            f"the fleet has {fleet} VDS that should run"
        ),
    }
    p = median(peak)
    memory = Row(
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
        baseline="RSS of the same process before the audit (fleet + drivers + connections loaded)",
        notes=(
            "peak = max(VmHWM of a fresh subprocess, reset after set-up: "
            f"{median([r['main_peak_rss_mb'] for r in results]):.0f} MB, and the summed PSS of it and "
            f"its {max(r['workers'] for r in results)} audit worker processes, sampled every 20 ms; "
            "their summed RSS, which counts the pages a child still shares with its parent once per "
            f"process, peaked at {median([r['tree_peak_rss_sum_mb'] for r in results]):.0f} MB); "
            "backend = one real session libvirtd serving libvirt's test driver over its UNIX socket, "
            f"one test+unix:// connection per node ({results[0]['nodes']} connections, domains held "
            f"by the daemon: libvirtd peak {max(daemon_peaks):.0f} MB, not counted); "
            f"audit took {median([r['audit_s'] for r in results]):.2f} s, every VDS it would probe at "
            "night probed for real (TCP connect to a loopback listener in another process)"
        ),
        extra={
            "children": results,
            "daemon_peak_rss_mb": daemon_peaks,
            "probes_sent": sent,
            "probes_accepted": accepted,
        },
    )
    listed = expect_work("VDS listed", [Work(c["vds"], str(c["vds"])) for c in results], fleet)
    return [check_work(memory, listed, probes)]


def _one(values: list[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(values)


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "b6-child":
        total, per_node, directory, sock, targets, log = sys.argv[2:]
        got = b6_child(int(total), int(per_node), Path(directory), Path(sock), targets.split(","), Path(log))
        print(json.dumps(got))
    else:
        raise SystemExit(
            "usage: python -m bench.b4_audit b6-child TOTAL PER_NODE NODE_DIR DAEMON_SOCKET TARGETS PROBE_LOG"
        )
