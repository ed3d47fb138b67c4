# Copyright (c) 2026 ipsinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Options every ipsinfra.infra module shares."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  inventory:
    description:
      - The static ipsinfra inventory directory (the Ansible YAML inventory the playbooks use).
      - An C(ipsinfra.infra.fleet) inventory plugin config is accepted too; its C(inventory) key is followed.
      - In a playbook, C({{ ansible_inventory_sources[0] }}) passes the inventory the play runs with.
    type: path
    required: true
  journal:
    description:
      - The action journal and state store, a path to an SQLite file or an SQLAlchemy URL
        (PostgreSQL C(postgresql+psycopg://user@host/db)).
      - Defaults to C($IPSINFRA_JOURNAL), else C(~/.local/state/ipsinfra/journal.sqlite3) on the controller.
      - A URL with a password is refused (task options are logged); use O(journal_password_file),
        C($IPSINFRA_JOURNAL) or libpq's C($PGPASSWORD).
    type: str
  journal_password_file:
    description:
      - A file holding the journal database's password (one line), used with a O(journal) URL
        that has none. Defaults to C($IPSINFRA_JOURNAL_PASSWORD_FILE).
    type: path
requirements:
  - the C(ipsinfra) Python package on the controller
notes:
  - >-
    The module runs on the controller and talks to the hypervisor nodes' APIs (libvirt, Proxmox) itself.
    Run it on C(localhost) or with C(delegate_to: localhost), with
    C(ansible_python_interpreter: "{{ ansible_playbook_python }}").
  - Error messages are ipsinfra's one-line messages; they never contain a secret.
attributes:
  check_mode:
    support: full
    description: The library plans only (C(check=True)); nothing is changed, the plan is returned.
  diff_mode:
    support: full
    description: Before and after are returned as YAML documents of the same keys, one setting per line.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller.
"""

    # The write-back options of the modules that change the fleet (extends_documentation_fragment:
    # ipsinfra.infra.common.write_back).
    WRITE_BACK = r"""
options:
  write_back:
    description:
      - Update the inventory's files after the change (the record's host_vars file and, for a new or
        renamed VDS, its C(hosts.yml) entry), keeping comments and formatting. In check mode the change
        is computed and returned, nothing written.
      - Where the inventory cannot be written, the task still reports the fleet's change, warns, and returns
        what to change in C(inventory_change.diff).
    type: bool
    default: true
  commit:
    description:
      - With O(write_back), commit the inventory files written back in the inventory's git repository
        (only those files), the message naming the action, the VDS and the journal line.
    type: bool
    default: false
"""
