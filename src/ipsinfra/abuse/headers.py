"""Header text and addresses taken from complaints, made safe to write into our letters.

A complaint's Subject, names and addresses end up in headers we write (the
answer's ``Subject: Re: ...``, its ``To:``). Anyone can write to the abuse
address, so:

* :func:`one_line` decodes encoded words (RFC 2047) the way the e-mail policy
  will when it writes the header, removes control characters (C0, C1 including
  U+0085, DEL) and line separators (CR, LF, U+2028, U+2029), and repeats until
  the policy would decode nothing further. Python 3.11 before 3.11.10 writes an
  encoded word carrying newlines as real header lines (CVE-2024-6923); with
  this, it never gets one, on any version.
* :func:`parse_address` parses an address with the policy's strict RFC 5322
  parser, checks each address's syntax with the e-mail identity
  (:func:`ipsinfra.identity.parse_email`: ``email-validator``, no DNS) and
  returns a :class:`~email.headerregistry.Address` re-rendered from the
  canonical form (domain lower case, IDNA A-labels); text is never pasted
  into an address header. There is no fallback to ``parseaddr``: a value it
  cannot parse is an :class:`AddressError`, never a half-parsed address such
  as ``"\\" <@>``.

Example::

    >>> one_line("=?utf-8?q?spam=0ABcc:_victim@evil.test?=")
    'spam Bcc: victim@evil.test'
    >>> str(parse_address("Ivan <IVAN@Client.EXAMPLE>", field="to"))
    'Ivan <IVAN@client.example>'
"""

from __future__ import annotations

import re
from email import policy
from email.headerregistry import Address

from ipsinfra.errors import InvalidInput
from ipsinfra.identity import email_ascii_domain, parse_email

__all__ = [
    "MAX_HEADER_CHARS",
    "AddressError",
    "one_line",
    "parse_address",
    "parse_addresses",
    "parse_msg_id",
]

# Longer header text is cut (with "...") before it is decoded: nobody reads a
# longer Subject, and the header parser's cost grows with it.
MAX_HEADER_CHARS = 1000

# C0 (TAB, CR, LF included), DEL, C1 (U+0085 NEL included), the Unicode line and
# paragraph separators, and lone surrogates (undecodable bytes kept by the
# parser's surrogateescape), which cannot be encoded into a letter.
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")
_SPACES_RE = re.compile(r"\s+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD_RE = re.compile(r"=\?[^?\s]*\?[bBqQ]\?")
_MSG_ID_RE = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}@[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")
_MAX_DECODE_ROUNDS = 4


class AddressError(InvalidInput):
    """An address in a complaint or a letter cannot be parsed; the message names the field."""


def _unsurrogate(text: str) -> str:
    """Raw 8-bit header bytes (kept by the parser as surrogate escapes) read as UTF-8."""
    if not _SURROGATE_RE.search(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text)


def _clean(text: str) -> str:
    text = _CONTROL_RE.sub(" ", _unsurrogate(text))
    return _SPACES_RE.sub(" ", text).strip()


def _policy_decoded(text: str) -> str:
    """What the e-mail policy makes of ``text`` as an unstructured header value."""
    try:
        return str(policy.default.header_factory("subject", text))
    except Exception:  # the stdlib parser's failures on hostile text vary by version
        # Unparsable as a header: make sure no encoded word is left for anyone to decode.
        return text.replace("=?", "= ?")


def one_line(text: str, *, limit: int = MAX_HEADER_CHARS) -> str:
    """``text`` decoded, without control characters or line breaks, on one line.

    The result is a fixed point: writing it as a header value decodes nothing
    further, so what the letter's reader sees is exactly this text.
    """
    if len(text) > limit:
        text = text[:limit] + "..."
    current = _clean(text)
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = _clean(_policy_decoded(current))
        if decoded == current:
            return current
        current = decoded
    # Encoded words nested deeper than any mailer writes: break their syntax.
    current = _ENCODED_WORD_RE.sub(lambda m: m.group(0).replace("=?", "= ?"), current)
    if _clean(_policy_decoded(current)) != current:  # pragma: no cover - defensive
        current = current.replace("=?", "= ?")
    return current


def parse_addresses(value: str, *, field: str) -> list[Address]:
    """The addresses in one address header value (``a@b.example, Name <c@d.example>``).

    Parsed with the e-mail policy's RFC 5322 parser; each address re-rendered
    from its parts, display names through :func:`one_line`. Every address must
    have a local part and a domain with a dot; the value must have no defects and
    no control characters (an encoded CR/LF included).

    Raises:
        AddressError: naming ``field`` and the value.
    """
    unfolded = _FOLD_RE.sub(" ", _unsurrogate(value)).strip()
    shown = unfolded if len(unfolded) <= 200 else unfolded[:200] + "..."
    problem = f"{field}: value {shown!r}: not an e-mail address we can parse"
    if not unfolded or len(unfolded) > MAX_HEADER_CHARS or _CONTROL_RE.search(unfolded):
        raise AddressError(problem)
    try:
        header = policy.default.header_factory("to", unfolded)
        found = list(getattr(header, "addresses", ()))
        defects = list(getattr(header, "defects", ()))
        addresses = [
            Address(display_name=one_line(a.display_name), username=a.username, domain=a.domain)
            for a in found
        ]
    except Exception:  # IndexError, ValueError...: the stdlib parser gives up on hostile text
        raise AddressError(problem) from None
    if not addresses or defects:
        raise AddressError(problem)
    checked: list[Address] = []
    for address in addresses:
        if not address.username or "." not in address.domain.strip("."):
            raise AddressError(problem)
        if _CONTROL_RE.search(address.addr_spec):
            raise AddressError(problem)
        # The stdlib parser also takes what no mailer delivers to ("x@[192.0.2.1]",
        # '"a b"@c.example', "a@-b.example"): every address must pass the identity's
        # syntax check too, and is re-rendered from its canonical form.
        try:
            canonical = parse_email(address.addr_spec, field=field)
        except InvalidInput:
            raise AddressError(problem) from None
        local = canonical.rpartition("@")[0]
        checked.append(
            Address(display_name=address.display_name, username=local, domain=email_ascii_domain(canonical))
        )
    return checked


def parse_address(value: str, *, field: str) -> Address:
    """Exactly one address from ``value`` (see :func:`parse_addresses`).

    Raises:
        AddressError: naming ``field`` and the value.
    """
    addresses = parse_addresses(value, field=field)
    if len(addresses) != 1:
        shown = value if len(value) <= 200 else value[:200] + "..."
        raise AddressError(f"{field}: value {shown!r}: not one e-mail address")
    return addresses[0]


def parse_msg_id(value: str | None) -> str | None:
    """A ``<left@right>`` message id from ``value``, or None when it is not one."""
    if not value:
        return None
    candidate = value.strip()
    return candidate if _MSG_ID_RE.fullmatch(candidate) else None
