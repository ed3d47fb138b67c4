"""The README's first command, ``ipsinfra demo``, run as a user runs it (issue 19, part 7).

Real libvirtd + qemu nodes, sshd hosts whose boot id changes, fakepve. The
demo's reboot finding must come from the reboot alone: the VDS that ran
before it is never stopped by anyone, which its qemu log and the journal show.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipsinfra.journal import Journal
from ipsinfra.lab.demo import BY_HAND, REBOOTED, run_demo
from ipsinfra.lab.fleet import LAB_PARENT, REPO_INVENTORY

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.ssh, pytest.mark.slow]

IPSINFRA = Path(sys.executable).with_name("ipsinfra")  # the venv's entry point


@pytest.fixture
def lab_dir() -> Iterator[Path]:
    """Under /var/tmp (qemu runs as nobody; pytest's tmp root is 0700), removed afterwards."""
    LAB_PARENT.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="ipsinfra-demo-test-", dir=LAB_PARENT))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def qemu_log(lab_dir: Path, node: str, vds: str) -> str:
    [log] = (lab_dir / "libvirt" / node).glob(f"**/qemu/log/{vds}.log")
    return log.read_text(encoding="utf-8", errors="replace")


def test_demo_runs_and_its_reboot_finding_is_not_staged(lab_dir: Path) -> None:
    done = subprocess.run(
        [str(IPSINFRA), "demo", "--lab-dir", str(lab_dir)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "FAILED" not in out
    assert out.rstrip().endswith("demo: every step ran")
    # Every step said what it did.
    for line in (
        f"{BY_HAND}: its client turned autostart off and runs it by hand (running)",
        "VPS3001(113.10) on kvm1: running, IP 203.0.113.110, root password set",
        "VPS3002(100.30) on pve1: running",
        "VPS1003(113.20) -> VPS1003(113.10) on kvm1: 4 vCPUs, VNC 127.0.0.11, verified",
        "203.0.113.110 (VPS3001(113.10)): blocked, cancelled",
        "letter: client_ticket to owner@c5.example -> outbox/",
        f"[5] node {REBOOTED} reboots",
        "rebooted since the last audit: kvm1.",
        "chain intact (§11.6)",
    ):
        assert line in out, line
    # What the reboot left: autostart brought back what has it, not the hand-run one nor the blocked one.
    assert f"not back: {BY_HAND} (stopped), VPS3001(113.10) (stopped)" in out
    # The hand-over: the reboot finding names the VDS that ran before it; nothing about the blocked one.
    handover = out[out.index("## Node audit") :]
    [finding] = [line for line in handover.splitlines() if "ran before the reboot" in line]
    assert finding.startswith(f"- **{BY_HAND}** on {REBOOTED}: {BY_HAND} ran before the reboot of {REBOOTED}")
    assert handover.index(finding) < handover.index("### 5.")  # §1.4: a service down ranks first
    assert "VPS3001(113.10)" not in handover

    # Nobody stopped it: its qemu was started once and never shut down through
    # libvirt (a stop logs "shutting down, reason=..."); the power-off killed it.
    log = qemu_log(lab_dir, REBOOTED, BY_HAND)
    assert log.count("starting up") == 1
    assert "shutting down" not in log and "terminating on signal" not in log
    blocked = qemu_log(lab_dir, REBOOTED, "VPS3001(113.10)")  # the block did stop its VDS, and it shows
    assert "shutting down, reason=shutdown" in blocked
    with Journal(lab_dir / "journal.sqlite3") as journal:
        assert [e.target for e in journal.entries() if BY_HAND in e.target] == []
        assert [e.action for e in journal.entries(action="audit.run")] == ["audit.run", "audit.run"]
        assert journal.get_state(f"ran:{REBOOTED}") is not None
        assert journal.verify().ok


def test_a_failed_step_makes_the_demo_fail_and_says_which(lab_dir: Path, tmp_path: Path) -> None:
    """A real refusal, not a patched function: kvm1's IP pool is empty, so the
    order for kvm1 is refused (and the SBL step has no VDS to name)."""
    source = tmp_path / "inventory"
    shutil.copytree(REPO_INVENTORY, source)
    kvm1 = source / "host_vars" / "kvm1.yml"
    text = kvm1.read_text(encoding="utf-8")
    assert "ip_pool: [" in text
    kvm1.write_text(
        "\n".join("ip_pool: []" if line.startswith("ip_pool:") else line for line in text.splitlines())
        + "\n",
        encoding="utf-8",
    )
    lines: list[str] = []
    rc = run_demo(lines.append, base_dir=lab_dir, source=source)
    out = "\n".join(lines)
    assert rc == 1, out
    summary = out[out.index("step(s) FAILED:") :]
    [refused] = [line for line in summary.splitlines() if line.startswith("  [2] ")]
    assert "order 3001 on kvm1 not provisioned: InvalidInput" in refused and "0 free IP(s)" in refused
    assert "[4] no VPS3001(113.10) for the notice to name" in summary
    assert "[3]" not in summary and "[5]" not in summary  # the other steps still ran, and ran well
    assert "VPS3002(100.30) on pve1: running" in out
    assert f"{BY_HAND} ran before the reboot of {REBOOTED}" in out
