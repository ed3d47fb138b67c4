"""Keep secrets out of logs and kept files: one redactor for every log record.

Two things are masked (as ``***``):

* **Secret values registered at run time** (:func:`register`): every secret an
  inventory ``SecretRef`` resolves to, switch passwords, playbook extravars.
  Their URL-encoded and JSON-escaped spellings are masked too.
* **Secret-looking assignments**, whatever the value: ``password=x``,
  ``cipassword: x``, ``password='x y'``, ``"password": "x"``,
  ``'token_value': 'x'``, ``PVEAPIToken=user@pve!id=uuid``,
  ``PVEAuthCookie=...``, ``Authorization: ...``. The key stays, the value goes.

:func:`install` puts the one :class:`SecretRedactor` in front of every log
record of the process (proxmoxer, urllib3, paramiko, netmiko, ansible-runner,
ipsinfra): it wraps the log record factory, so a handler added later (a
user's, pytest's ``caplog``) sees the record already redacted, and it is added
to the root logger's handlers. ``ipsinfra``'s CLI installs it first thing;
the modules that handle secrets (Proxmox API, switch sessions, playbook runs)
install it too, so a script importing ipsinfra is covered as well.

>>> redact("POST /qemu/101/config {'ciuser': 'c', 'cipassword': 'S3cret pw'}")
"POST /qemu/101/config {'ciuser': 'c', 'cipassword': '***'}"
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "SecretRedactor",
    "install",
    "redact",
    "register",
    "registered",
    "unregister",
]

MASK = "***"
# Shorter values are not masked by value (a 2-character "secret" would mask half
# of every line); patterns still mask them after a secret-looking key.
MIN_SECRET_LEN = 4

# Linear in the line's length: each match starts at a literal word, and every
# repeat after it is bounded, so no position is rescanned more than a few
# hundred characters (a 50 MB line of "password" costs one pass, not a square).
_KEY = r"(?:password|passwd|passphrase|secret|token_value|token|api_?key|private_key)"
_VALUE = r"""(?:"(?:[^"\\\n]|\\.){0,1024}"|'(?:[^'\\\n]|\\.){0,1024}'|[^\s"',;&)}\]]{1,1024})"""
_ASSIGNMENT = re.compile(
    rf"""(?P<key>{_KEY}[\w.-]{{0,64}}["']?[ \t]{{0,8}}[:=][ \t]{{0,8}})(?P<value>{_VALUE})""",
    re.IGNORECASE,
)
_TOKEN_HEADER = re.compile(
    r"""(?P<key>(?:PVEAPIToken|PVEAuthCookie)[ \t]{0,8}=[ \t]{0,8}|"""
    r"""Authorization["']?[ \t]{0,8}[:=][ \t]{0,8}["']?)"""
    r"""(?P<value>(?:Bearer[ \t]{1,8}|Basic[ \t]{1,8})?[^\s"',;}\]]{1,2048})""",
    re.IGNORECASE,
)

_lock = threading.Lock()
_secrets: set[str] = set()
_ordered: list[str] = []  # registered spellings, longest first


def _spellings(value: str) -> set[str]:
    found = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    found.add(value.encode("unicode_escape").decode("ascii", "replace"))
    return {s for s in found if len(s) >= MIN_SECRET_LEN}


def register(*values: str | None) -> None:
    """Mask these values (and their URL/JSON spellings) wherever they appear from now on."""
    global _ordered
    with _lock:
        before = len(_secrets)
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LEN:
                _secrets.update(_spellings(value))
        if len(_secrets) != before:
            _ordered = sorted(_secrets, key=len, reverse=True)


def unregister(*values: str) -> None:
    """Stop masking these values (tests; a rotated secret)."""
    global _ordered
    with _lock:
        for value in values:
            _secrets.difference_update(_spellings(value))
        _ordered = sorted(_secrets, key=len, reverse=True)


def registered() -> list[str]:
    """The registered spellings, longest first (a copy)."""
    return list(_ordered)


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return f"{match.group('key')}{value[0]}{MASK}{value[0]}"
    return f"{match.group('key')}{MASK}"


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with registered secrets, ``extra`` values and secret assignments masked."""
    if not text:
        return text
    for secret in sorted({s for s in extra if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _TOKEN_HEADER.sub(_mask_value, text)
    return _ASSIGNMENT.sub(_mask_value, text)


class SecretRedactor(logging.Filter):
    """Rewrite a record's message (and its traceback text) with :func:`redact`; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_ipsinfra_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format: keep what can be shown
            message = f"{record.msg!s} {record.args!r}"
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        setattr(record, "_ipsinfra_redacted", True)  # noqa: B010 (LogRecord has no such field)
        return True


_redactor = SecretRedactor()
_installed_factory: Callable[..., logging.LogRecord] | None = None


def install() -> SecretRedactor:
    """Put the redactor in front of every log record of this process; idempotent.

    Wraps :func:`logging.getLogRecordFactory` (records are redacted as they are
    made, before any logger filter or handler sees them) and adds the filter
    to the root logger's current handlers. Returns the one redactor.
    """
    global _installed_factory
    with _lock:
        current = logging.getLogRecordFactory()
        if current is not _installed_factory:
            previous = current

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                _redactor.filter(record)
                return record

            logging.setLogRecordFactory(factory)
            _installed_factory = factory
    for handler in logging.getLogger().handlers:
        if _redactor not in handler.filters:
            handler.addFilter(_redactor)
    return _redactor
