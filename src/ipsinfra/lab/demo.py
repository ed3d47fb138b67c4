"""The README's first command: a night shift's story on the embedded lab.

1. The nightly audit runs once (it remembers each node's boot identity).
2. Sales hands over a new client's order: a VDS is provisioned on a libvirt
   node (its password set through the guest agent) and another on Proxmox.
3. A VDS is migrated between the two libvirt nodes and renamed (§9.10).
4. A Spamhaus SBL notice names the new client's VDS: it is blocked at once,
   cancelled (§7.2: new client, single service) and the letters are written
   to the outbox.
5. A node reboots; one VDS that should run stays down.
6. The audit runs again and prints the shift hand-over (§4.11, §5.2).

Nothing here leaves 127.0.0.0/8: the lab's nodes, switches and services are
local processes; the documentation addresses in the inventory are never
contacted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from ipsinfra import audit
from ipsinfra.abuse.handle import handle_complaint
from ipsinfra.abuse.mail import send
from ipsinfra.errors import IpsinfraError
from ipsinfra.lab.fleet import Lab
from ipsinfra.migrate import migrate
from ipsinfra.models import Client, Order
from ipsinfra.provision import provision

SBL_NOTICE = """\
From: Spamhaus SBL Team <sbl-team@spamhaus.example>
To: abuse@ips.example
Subject: SBL{ref}: {ip} spam source (snowshoe)
Date: {date}
Message-ID: <sbl{ref}@spamhaus.example>

Spamhaus SBL listing SBL{ref}

  {ip}/32 is listed in the Spamhaus Block List (SBL).
  Reason: spam source, snowshoe spam operation observed since {day}.

Please remove this spammer from your network. The listing will be removed
when the issue is resolved.

-- The Spamhaus Project
"""


def run_demo(say: Callable[[str], None] = print, *, base_dir: Path | None = None) -> int:
    """Tell the story; returns 0 when every step ran (findings in the report are part of it)."""
    with Lab(base_dir) as lab:
        assert lab.fleet is not None and lab.pool is not None
        for line in lab.describe():
            say(line)
        today = dt.date.today()
        with lab.journal() as journal:
            first = audit.run(lab.fleet, lab.pool, journal=journal, probe_for=lab.probe_for, recheck_delay=1)
            say(f"\n[1] nightly audit: {len(first.nodes)} nodes, {len(first.open_findings)} finding(s)")

            say("\n[2] a new client's order, provisioned (§8.5 names, §4.8 passwords)")
            lab.update_inventory(
                client=Client(
                    id="c5",
                    name="New Client LLC",
                    address="5 Fresh Street, Moscow",
                    email="owner@c5.example",
                    activated=today,
                    services=1,
                )
            )
            made = []
            for number, node in ((3001, "kvm1"), (3002, "pve1")):
                order = Order(
                    number=number, client="c5" if number == 3001 else "c3", node=node, vcpus=1,
                    memory_mib=256, disk_gib=10, ips=1, os="debian-12", comment="install nginx",
                )  # fmt: skip
                try:
                    result = provision(order, lab.fleet, lab.pool, journal=journal, today=today)
                except IpsinfraError as exc:
                    say(f"    order {number} on {node}: not provisioned: {exc}")
                    continue
                lab.update_inventory(vds=result.record)
                made.append(result.plan.name)
                shown = "set, shown once to the caller (not in this log)" if result.password else "unchanged"
                say(f"    {result.plan.name} on {node}: {result.vds.state.value if result.vds else '?'}, "
                    f"IP {result.record.ips[0]}, root password {shown}")  # fmt: skip
                for line in result.mismatches:
                    say(f"    MISMATCH: {line}")

            say("\n[3] migration (§9): exact vCPUs, renamed for the new node, VNC and bridge moved")
            if lab.mode == "daemon":
                moved = migrate("VPS1003(113.20)", "kvm1", lab.fleet, lab.pool, journal=journal)
                state = "verified" if moved.ok else "NOT verified: " + "; ".join(moved.mismatches)
                vcpus = moved.vds.vcpus if moved.vds else "?"
                say(f"    VPS1003(113.20) -> {moved.plan.new_name} on kvm1: {vcpus} vCPUs, "
                    f"VNC {moved.plan.vnc_listen}, {state}")  # fmt: skip
            else:
                say("    skipped: libvirt's test driver cannot migrate (run as root for real daemons)")

            say("\n[4] a Spamhaus SBL notice (§7.2)")
            target = lab.fleet.vds.get("VPS3001(113.10)")
            if target is not None and target.ips:
                now = dt.datetime.now(dt.UTC)
                raw = SBL_NOTICE.format(
                    ref="654321", ip=target.ips[0], date=now.strftime("%a, %d %b %Y %H:%M:%S +0000"),
                    day=today.isoformat(),
                )  # fmt: skip
                handled = handle_complaint(
                    raw, lab.fleet, lab.pool, abuse_from="abuse@ips.example", journal=journal
                )
                for s in handled.services:
                    cancelled = ", cancelled" if s.cancelled else ""
                    say(f"    {s.ip} ({s.server}): {s.action}{cancelled} — {s.detail}")
                outbox = lab.base_dir / "outbox"
                report = send(handled.letters, smtp=None, outbox=outbox)
                for d in report.deliveries:
                    where = f"outbox/{Path(d.path).name}" if d.path else (d.error or d.via)
                    say(f"    letter: {d.kind} to {d.to} -> {where}")

            say("\n[5] node kvm1 reboots; one VDS that should run does not come back")
            if lab.mode == "daemon":
                lab.reboot("kvm1")
                lab.driver("kvm1").stop("VPS1001(113.10)", timeout=2)
            else:
                say("    skipped: libvirt's test driver cannot reboot")

            say("\n[6] the audit, and the shift hand-over (§4.11)\n")
            final = audit.run(lab.fleet, lab.pool, journal=journal, probe_for=lab.probe_for, recheck_delay=1)
            say(audit.to_markdown(final))
            verdict = journal.verify()
            say(f"journal: {verdict.checked} lines, chain {'intact' if verdict.ok else 'BROKEN'} (§11.6)")
            return 0 if verdict.ok else 1
