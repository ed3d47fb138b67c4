"""ARF (RFC 5965) helpers: where the reported message came from when the feedback
report has no ``Source-IP``: the address in the TOP ``Received:`` field of the
original message (the one the reporting MTA added, naming the host that
connected to it; the ones below are the sender's own claims).

Example::

    >>> source_ip_from_received(["from mail.example (mail.example [192.0.2.1]) by mx.example.org"])
    IPv4Address('192.0.2.1')
"""

from __future__ import annotations

import re

from ipsinfra.abuse.formats.base import ip_or_none
from ipsinfra.models import IPAddress

__all__ = ["source_ip_from_received"]

# "from helo (rdns [ip])", "from [ip]", "(ip)"; bounded tokens, linear.
_BRACKETED_RE = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]{2,45})\]")
_BY_RE = re.compile(r"(?:^|\s)by\s", re.IGNORECASE)
_FROM_PAREN_RE = re.compile(r"\(\s*(?:[^()\s]{1,255}\s+)?\[?([0-9A-Fa-f:.]{2,45})\]?\s*\)")


def source_ip_from_received(received: list[str]) -> IPAddress | None:
    """The connecting address of the top ``Received:`` field, or None."""
    if not received:
        return None
    top = received[0][:2000]
    by = _BY_RE.search(top)
    head = top if by is None else top[: by.start()]
    for pattern in (_BRACKETED_RE, _FROM_PAREN_RE):
        for m in pattern.finditer(head):
            ip = ip_or_none(m.group(1))
            if ip is not None:
                return ip
    return None
