"""What the playbook tests read back after a run: tasks changed, and the lab's journal length."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ipsinfra.lab.fleet import Lab
    from ipsinfra.playbooks import PlaybookResult


def changed(result: PlaybookResult) -> int:
    return result.hosts["localhost"].changed


def journal_lines(lab: Lab) -> int:
    with lab.journal() as journal:
        return len(journal.entries())
