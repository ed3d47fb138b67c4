"""ipsinfra's facts about a VDS, kept beside it on the hypervisor.

Both backends have a free-text description (libvirt ``<description>``,
Proxmox ``description``). ipsinfra keeps its facts there as ``ipsinfra-<key>:
<value>`` lines, so the order check (§8.1-8.4), the audit and a human reading
the hypervisor's UI see the same thing. Other text is left as it is.

>>> text = render({"order": "1234", "os": "debian-12"}, "hand-written note")
>>> parse(text)
{'order': '1234', 'os': 'debian-12'}
>>> strip(text)
'hand-written note'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PREFIX = "ipsinfra-"
_LINE = re.compile(rf"^{PREFIX}([a-z][a-z0-9-]*):[ \t]*(.*)$")


def parse(description: str) -> dict[str, str]:
    """The ``ipsinfra-*`` facts in a description."""
    facts: dict[str, str] = {}
    for line in description.splitlines():
        m = _LINE.match(line.strip())
        if m:
            facts[m[1]] = m[2].strip()
    return facts


def strip(description: str) -> str:
    """The description without ipsinfra's lines."""
    kept = [line for line in description.splitlines() if not _LINE.match(line.strip())]
    return "\n".join(kept).strip()


def render(facts: Mapping[str, object], other: str = "") -> str:
    """A description holding ``facts`` (sorted, one per line) after ``other``."""
    lines = [strip(other)] if strip(other) else []
    for key in sorted(facts):
        value = facts[key]
        if value is None or value == "":
            continue
        if not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            raise ValueError(f"metadata key: value {key!r}: lower-case letters, digits and '-' only")
        text = " ".join(str(value).split())  # one line, no control characters
        lines.append(f"{PREFIX}{key}: {text}")
    return "\n".join(lines)


def update(description: str, facts: Mapping[str, object]) -> str:
    """``description`` with ``facts`` merged over the ipsinfra facts it had."""
    merged: dict[str, object] = dict(parse(description))
    merged.update(facts)
    return render(merged, description)
