# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible module ipsinfra.infra.abuse_watch: handle the abuse mailbox's new complaints once (§7)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: abuse_watch
short_description: Read the abuse mailbox and handle every new complaint once, within the blast-radius limits
description:
  - Reads the new messages of an IMAP folder (implicit TLS, the certificate always verified), a Maildir
    or an mbox file. Each goes through the intake and the verdict, then what C(ipsinfra abuse handle)
    does (§7) within the operator's limits; the letters are written to O(outbox).
  - A complaint acts once. The state store remembers each processed message (by Message-ID, else its
    bytes, and report rows that carry their own time); the mailbox marks it (IMAP keyword
    C($IpsinfraDone), optionally C(\Seen) and a move to O(done_folder); Maildir C(new/) to C(cur/) with
    the Seen flag; an mbox is only read).
  - A message that cannot be read is reported, marked failed (IMAP C($IpsinfraFailed), Maildir flagged)
    and not read again; one whose handling failed is left unmarked and tried again on the next run. One
    message never stops the others.
  - Past the limits (an untrusted sender, an unconfirmed SBL notice, more servers than allowed, a run
    that has already blocked O(max_blocks) servers) nothing is blocked. A proposal waits for
    C(ipsinfra abuse handle --confirm <id>) and is returned in RV(proposals).
  - The task fails (with the server and the reason) when the mailbox cannot be read at all. With
    O(fail_on_attention) it also fails when a message needs a person (RV(exit_code) 1).
author: ipsinfra maintainers (@ipsinfra)
version_added: "0.1.0"
extends_documentation_fragment:
  - ipsinfra.infra.common
options:
  source:
    description:
      - C(imaps://user@host[:port][/FOLDER]) (port 993 and C(INBOX) by default), C(maildir:PATH)
        or C(mbox:PATH).
      - Never a password in the URL; it is refused.
    type: str
    required: true
  imap_password:
    description: The IMAP password. Default, the file O(imap_password_file), else C($IPSINFRA_IMAP_PASSWORD).
    type: str
  imap_password_file:
    description: A file holding the IMAP password (first line), mode 0600 or stricter.
    type: path
  ca_file:
    description: CA certificate(s) the IMAP server's certificate is verified with (a private CA). Default, the
      system's CAs.
    type: path
  done_folder:
    description: IMAP, move each processed message to this folder.
    type: str
  mark_seen:
    description: IMAP, also set C(\Seen) on processed messages.
    type: bool
    default: false
  abuse_from:
    description: Our abuse address, the letters' sender.
    type: str
    required: true
  outbox:
    description: The folder the letters are written to (one C(.eml) each).
    type: path
    required: true
  write_back:
    description: Update the inventory's files after a block or a §7.2 cancellation (see C(server_block)).
    type: bool
    default: true
  dc_list:
    description: The DC's server list (CSV, columns C(ip) and C(name)) each target's name is checked against.
    type: path
  max_targets:
    description: Act at once on a complaint naming up to this many of our servers (default, the sites' own).
    type: int
  max_blocks:
    description:
      - Block at most this many servers in this run, in all. Once the run has blocked that many, every
        further immediate complaint is only proposed (stored, its letters drafted, nothing blocked),
        with the reason C(this run already blocked N servers).
      - Default, the smallest C(abuse_max_blocks_per_run) of the inventory's sites (5 unless set).
    type: int
  lang:
    description: The client's ticket language.
    type: str
    choices: [en, ru]
    default: en
  dnsbl:
    description: Confirm Spamhaus SBL notices by a DNSBL look-up before blocking (§7.2).
    type: bool
    default: true
  dnsbl_resolver:
    description: Name server for the DNSBL look-up (default, the system's).
    type: str
  dnsbl_port:
    description: Its port.
    type: int
    default: 53
  dnsbl_zone:
    description: DNSBL zone.
    type: str
    default: zen.spamhaus.org
  dqs_key:
    description: Spamhaus DQS key (default, C($IPSINFRA_DQS_KEY)).
    type: str
  timeout:
    description: Seconds to wait for the IMAP server.
    type: float
    default: 30
  max_bytes:
    description: A message larger than this (bytes) is refused, not read.
    type: int
    default: 5242880
  fail_on_attention:
    description: Fail the task when a message needs a person (rejected, failed, a refusal, a letter not
      written, the inventory not updated after a block, a proposal waiting).
    type: bool
    default: false
seealso:
  - module: ipsinfra.infra.server_block
"""

EXAMPLES = r"""
- name: Handle the abuse mailbox (every 10 minutes from AWX)
  ipsinfra.infra.abuse_watch:
    inventory: "{{ ansible_inventory_sources[0] }}"
    source: imaps://abuse@mail.example.net/INBOX
    imap_password_file: /etc/ipsinfra/imap.pw
    done_folder: Processed
    abuse_from: abuse@example.net
    outbox: /var/spool/ipsinfra/outbox
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  register: abuse

- name: What would happen (nothing marked, stored or blocked)
  ipsinfra.infra.abuse_watch:
    inventory: inventory/example
    source: maildir:/var/mail/abuse
    abuse_from: abuse@example.net
    outbox: /tmp/outbox
  check_mode: true
"""

RETURN = r"""
source:
  description: The mailbox read (never with a password).
  returned: always
  type: str
  sample: imaps://abuse@mail.example.net:993/INBOX
summary:
  description: One line, as C(ipsinfra abuse watch) prints it.
  returned: always
  type: str
  sample: "imaps://abuse@mail.example.net:993/INBOX: 2 done, 1 rejected"
exit_code:
  description: 0 everything handled and nothing waits for a person, 1 something does.
  returned: always
  type: int
messages:
  description: One entry per message read, with its status (done, duplicate, rejected, failed, checked, seen),
    category, services touched, proposal, letters and problems, and C(inventory_change) (the write-back
    after a block; files, written, error, diff). A write-back that could not write is a problem of its
    message (a warning; RV(exit_code) 1) naming the file and what to change by hand; the block stands.
  returned: always
  type: list
  elements: dict
proposals:
  description: The ids of proposals waiting for C(ipsinfra abuse handle --confirm <id>).
  returned: always
  type: list
  elements: str
blocked:
  description: How many servers this run blocked (in check mode, would have blocked).
  returned: always
  type: int
  sample: 2
max_blocks:
  description: The run's limit on blocks (O(max_blocks), else the sites' C(abuse_max_blocks_per_run)).
  returned: always
  type: int
  sample: 5
"""

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]  # noqa: E402
from ansible_collections.ipsinfra.infra.plugins.module_utils.common import (  # type: ignore[import-not-found]  # noqa: E402
    COMMON_ARGS,
    error_message,
    fleet_and_pool,
    open_journal,
    require_ipsinfra,
    write_back_path,
)


def _argument_spec() -> dict[str, Any]:
    return {
        **COMMON_ARGS,
        "source": {"type": "str", "required": True},
        "imap_password": {"type": "str", "no_log": True},
        "imap_password_file": {"type": "path", "no_log": False},  # a path, not the secret
        "ca_file": {"type": "path"},
        "done_folder": {"type": "str"},
        "mark_seen": {"type": "bool", "default": False},
        "abuse_from": {"type": "str", "required": True},
        "outbox": {"type": "path", "required": True},
        "write_back": {"type": "bool", "default": True},
        "dc_list": {"type": "path"},
        "max_targets": {"type": "int"},
        "max_blocks": {"type": "int"},
        "lang": {"type": "str", "choices": ["en", "ru"], "default": "en"},
        "dnsbl": {"type": "bool", "default": True},
        "dnsbl_resolver": {"type": "str"},
        "dnsbl_port": {"type": "int", "default": 53},
        "dnsbl_zone": {"type": "str", "default": "zen.spamhaus.org"},
        "dqs_key": {"type": "str", "no_log": True},
        "timeout": {"type": "float", "default": 30.0},
        "max_bytes": {"type": "int", "default": 5242880},
        "fail_on_attention": {"type": "bool", "default": False},
    }


def run_module() -> None:
    module = AnsibleModule(argument_spec=_argument_spec(), supports_check_mode=True)
    require_ipsinfra(module)
    import os
    from pathlib import Path

    from ipsinfra.abuse import dnsbl
    from ipsinfra.abuse.intake import DEFAULT_LIMITS
    from ipsinfra.abuse.mailbox import open_mailbox
    from ipsinfra.abuse.watch import watch
    from ipsinfra.audit import load_dc_names

    p = module.params
    result: dict[str, Any] = {"changed": False}
    if p["max_blocks"] is not None and p["max_blocks"] < 1:  # before any mailbox is opened
        module.fail_json(msg=f"max_blocks: value {p['max_blocks']}: must be at least 1", **result)
    try:
        if p["imap_password"]:
            from ipsinfra.redact import register

            register(p["imap_password"])
        dc_names = load_dc_names(p["dc_list"]) if p["dc_list"] else None
        lookup = None
        if p["dnsbl"]:
            key = p["dqs_key"] or os.environ.get("IPSINFRA_DQS_KEY") or None

            def lookup(ip: str) -> Any:
                return dnsbl.check(
                    ip, resolver=p["dnsbl_resolver"], port=p["dnsbl_port"], zone=p["dnsbl_zone"], dqs_key=key
                )

        limits = DEFAULT_LIMITS.model_copy(update={"max_bytes": p["max_bytes"]})
        with (
            fleet_and_pool(p["inventory"]) as (fleet, pool),
            open_journal(p["journal"]) as journal,
            open_mailbox(
                p["source"],
                password=p["imap_password"] or None,
                password_file=p["imap_password_file"],
                ca_file=p["ca_file"],
                done_folder=p["done_folder"],
                mark_seen=p["mark_seen"],
                read_only=module.check_mode,
                timeout=p["timeout"],
                max_bytes=p["max_bytes"],
            ) as mailbox,
        ):
            report = watch(
                mailbox,
                fleet,
                pool,
                journal=journal,
                abuse_from=p["abuse_from"],
                outbox=Path(p["outbox"]),
                check=module.check_mode,
                limits=limits,
                lang=p["lang"],
                inventory=write_back_path(p),
                dc_names=dc_names,
                max_targets=p["max_targets"],
                max_blocks=p["max_blocks"],
                dnsbl_lookup=lookup,
            )
    except Exception as exc:
        module.fail_json(msg=error_message(exc), **result)

    acted = {"done", "duplicate", "rejected", "checked"}
    result.update(
        changed=any(m.status in acted for m in report.messages),
        source=report.source,
        summary=report.summary(),
        exit_code=report.exit_code,
        messages=[m.model_dump(mode="json") for m in report.messages],
        proposals=[m.proposal for m in report.messages if m.proposal],
        blocked=report.blocked,
        max_blocks=report.max_blocks,
    )
    for m in report.messages:
        for problem in m.problems:
            module.warn(f"{m.id}: {problem}")
        if m.status in {"rejected", "failed"}:
            module.warn(f"{m.id}: {m.status}: {m.detail}")
    if p["fail_on_attention"] and report.exit_code:
        module.fail_json(msg=f"{report.summary()}: a message needs a person", **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
