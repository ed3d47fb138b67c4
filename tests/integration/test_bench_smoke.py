"""The benchmarks never rot: ``python -m bench --smoke`` runs every one, tiny.

Only the JSON's shape is checked (every id there, medians and ratios numeric):
smoke numbers on a shared CI machine are noise, so no timing target is
asserted here; the full run (``python -m bench``) reports pass/fail.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IDS = ("B1", "B2", "B3", "B4", "B5", "B6")

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.netns, pytest.mark.ssh, pytest.mark.qemu]


def test_smoke_run_reports_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["meta"]["mode"] == "smoke"
    assert data["meta"]["skipped"] == []
    results = data["results"]
    assert {r["id"].split(".")[0] for r in results} == set(IDS)
    for r in results:
        for key in ("baseline_median", "ipsinfra_median", "ratio"):
            assert isinstance(r[key], int | float) and math.isfinite(r[key]), (r["id"], key, r[key])
        assert r["ipsinfra_median"] > 0 and r["baseline_median"] > 0, r["id"]
        assert isinstance(r["passed"], bool) and r["target"], r["id"]
    assert "ssh-settings" in {r["id"].split(".")[1] for r in results if r["id"].startswith("B2")}
    # B3 reports backend calls per node for both backends.
    b3 = [r for r in results if r["id"].startswith("B3")]
    assert all("calls_per_node_ipsinfra" in r["extra"] for r in b3)
    # libvirt_listing=ssh: a real libvirtd listed in one SSH exec, not one libvirt RPC from the client.
    over_ssh = [r for r in b3 if r["id"].startswith("B3.libvirt-ssh-")]
    assert over_ssh and all(r["extra"]["libvirt_rpcs_ipsinfra"] == 0 for r in over_ssh)
    # B6: the domains live in a real session libvirtd (one connection per node), not in the measured process.
    b6 = [r for r in results if r["id"].startswith("B6")]
    assert b6 and all("libvirtd" in r["notes"] and r["extra"]["daemon_peak_rss_mb"] for r in b6)
    assert all(c["reachable"] == c["nodes"] > 1 for r in b6 for c in r["extra"]["children"])
    # B2 and B4 say what their CPU implies on this machine: a floor measured, not assumed.
    b2 = [r for r in results if r["id"].startswith("B2")]
    assert all(r["extra"]["bound"]["cpu_floor_s"] > 0 for r in b2)
    assert all(r["extra"]["controller_cpu_s_median"]["shipped"] > 0 for r in b2)
    b4 = [r for r in results if r["id"].startswith("B4.ideal")]
    assert b4 and all(r["extra"]["cpu_floor_s"] > 0 and r["extra"]["cores"] >= 1 for r in b4)
    assert all("CPU s" in r["notes"] for r in b2 + b4)
    for prefix in IDS:  # the printed table, too
        assert f"\n{prefix}." in proc.stdout, prefix
