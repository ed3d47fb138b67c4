"""Hostile complaints from issue 18, built in code (some are megabytes; none is stored).

Each builder returns the raw bytes that arrive at the public abuse address.
``DOS_INPUTS`` are the denial-of-service inputs (each must be answered within
2 s and 200 MB); ``TRACEBACK_INPUTS`` once crashed the parser with a builtin
exception (each must now be a one-line error, exit 2).
"""

from __future__ import annotations

import base64
from collections.abc import Callable

HEAD = (
    b"From: reporter@example.org\r\n"
    b"To: abuse@ourhost.example.net\r\n"
    b"Date: Mon, 03 Mar 2025 10:00:00 +0000\r\n"
    b"Message-ID: <hostile@example.org>\r\n"
)

# The injected Subject of the issue: an encoded word whose text is itself an
# encoded word carrying newlines, a Bcc and an extra header.
INNER_SUBJECT = "=?utf-8?q?spam=0ABcc:_victim@evil.test=0AX-Injected:_yes?="
INJECTED_SUBJECT = "=?utf-8?b?" + base64.b64encode(INNER_SUBJECT.encode()).decode() + "?="


def mail(subject: str | bytes, body: bytes, extra: bytes = b"") -> bytes:
    subj = subject if isinstance(subject, bytes) else subject.encode("utf-8")
    return HEAD + b"Subject: " + subj + b"\r\n" + extra + b"\r\n" + body


def blank_lines() -> bytes:
    """50 KB of blank lines (the forward-marker search)."""
    return mail("spam from 192.0.2.7", b"Spam from 192.0.2.7\r\n" + b"\r\n" * 25_000 + b"x")


def blank_lines_with_spaces() -> bytes:
    """50 KB of whitespace-only lines: the same search, spaces between the newlines."""
    return mail("spam from 192.0.2.7", b"Spam from 192.0.2.7\n" + b" \t\n" * 17_000 + b"x")


def html_script() -> bytes:
    """200 KB of ``<script`` in an HTML part (regex HTML stripping)."""
    html = b"<html><body>Spam from 192.0.2.7 " + b"<script" * 30_000 + b"</body></html>"
    return mail(
        "spam",
        html,
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
    )


def many_ips() -> bytes:
    """20,000 IPs in a body (quadratic overlap checks and de-duplication)."""
    ips = "\n".join(f"Spam from 198.{(i >> 8) & 255}.{i & 255}.{(i * 7) % 250 + 1}" for i in range(20_000))
    return mail("spam", ips.encode())


ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "Report-Type: login-attack\n"
    "Source: 192.0.2.7\n"
    "Source-Type: ipv4\n"
)


def xarf_alias_bomb() -> bytes:
    """A 617-byte X-ARF YAML alias bomb (billion laughs)."""
    boundary = b"xarfbomb"
    return mail(
        "abuse report about 192.0.2.7",
        b"--xarfbomb\r\nContent-Type: text/plain\r\n\r\nLogin attack from 192.0.2.7\r\n"
        b"--xarfbomb\r\nContent-Type: text/plain; name=report.txt\r\n\r\n"
        + ALIAS_BOMB.encode()
        + b"\r\n--xarfbomb--\r\n",
        b"X-ARF: YES\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=" + boundary + b"\r\n",
    )


def big_body(size: int = 50 * 1024 * 1024) -> bytes:
    """A 50 MB body."""
    line = b"spam spam spam 192.0.2.7 spam spam spam spam spam spam spam spam spam spam\n"
    return mail("spam", line * (size // len(line)))


def nested_multipart(depth: int = 2_000) -> bytes:
    """2,000-level nested multipart."""
    parts = []
    for i in range(depth):
        parts.append(f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n".encode())
    inner = b"Content-Type: text/plain\r\n\r\nspam from 192.0.2.7\r\n"
    tail = b"".join(f"\r\n--b{i}--\r\n".encode() for i in reversed(range(depth)))
    return HEAD + b"Subject: nested\r\nMIME-Version: 1.0\r\n" + b"".join(parts) + inner + tail


def punycode_charset() -> bytes:
    return mail(
        "spam",
        b"abc-9999 Spam from 192.0.2.7",
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=punycode\r\n",
    )


def punycode_subject() -> bytes:
    return mail("=?punycode?q?abc-9999?=", b"Spam from 192.0.2.7")


def huge_timezone() -> bytes:
    return (
        b"From: reporter@example.org\r\nSubject: spam\r\n"
        b"Date: Mon, 03 Mar 2025 10:00:00 +99999999999999999999\r\n\r\nSpam from 192.0.2.7\r\n"
    )


def bad_from(value: str, field: str = "From") -> Callable[[], bytes]:
    """``From: <`` and friends: an address the header parser cannot finish (``IndexError``)."""

    def build() -> bytes:
        return (
            f"{field}: {value}\r\nSubject: spam\r\nDate: Mon, 03 Mar 2025 10:00:00 +0000\r\n"
            "\r\nSpam from 192.0.2.7\r\n"
        ).encode()

    return build


def crlf_from() -> bytes:
    return (
        b"From: =?utf-8?q?a=0D=0Ab?= <a@example.org>\r\nSubject: spam\r\n"
        b"Date: Mon, 03 Mar 2025 10:00:00 +0000\r\n\r\nSpam from 192.0.2.7\r\n"
    )


def crlf_reply_to() -> bytes:
    return (
        b"From: a@example.org\r\nReply-To: =?utf-8?q?x=0D=0ABcc:_victim@evil.test?= <r@example.org>\r\n"
        b"Subject: spam\r\nDate: Mon, 03 Mar 2025 10:00:00 +0000\r\n\r\nSpam from 192.0.2.7\r\n"
    )


def bad_date_no_received() -> bytes:
    return b"From: a@example.org\r\nSubject: spam\r\nDate: \xff\xfe garbage\r\n\r\nSpam from 192.0.2.7\r\n"


DOS_INPUTS: dict[str, Callable[[], bytes]] = {
    "blank_lines": blank_lines,
    "blank_lines_with_spaces": blank_lines_with_spaces,
    "html_script": html_script,
    "many_ips": many_ips,
    "xarf_alias_bomb": xarf_alias_bomb,
    "big_body": big_body,
    "nested_multipart": nested_multipart,
}

TRACEBACK_INPUTS: dict[str, Callable[[], bytes]] = {
    "punycode_charset": punycode_charset,
    "punycode_subject": punycode_subject,
    "nested_multipart": nested_multipart,
    "huge_timezone": huge_timezone,
    "from_angle": bad_from("<"),
    "from_guillemet": bad_from("‹"),
    "from_quote": bad_from('"'),
    "reply_to_at": bad_from("a@", "Reply-To"),
    "crlf_from": crlf_from,
    "crlf_reply_to": crlf_reply_to,
    "bad_date_no_received": bad_date_no_received,
}


# --------------------------------------------------------------------------- issue 21: sized shapes

MiB = 1024 * 1024
# Just under intake's 5 MiB limit, the mail's own header lines included.
NEAR_LIMIT = 5 * MiB - 4096


def sized(unit: bytes, size: int) -> bytes:
    """``unit`` repeated to ``size`` bytes (rounded down to whole units)."""
    return unit * (size // len(unit))


def blank_lines_sized(size: int) -> bytes:
    """``size`` bytes of blank lines after one line naming the target."""
    return mail("spam from 192.0.2.7", b"Spam from 192.0.2.7\r\n" + sized(b"\r\n", size))


def blank_lines_with_spaces_sized(size: int) -> bytes:
    return mail("spam from 192.0.2.7", b"Spam from 192.0.2.7\n" + sized(b" \t\n", size))


def less_than_sized(size: int, *, html: bool = False) -> bytes:
    """``size`` bytes of ``<`` on one line (every IP regex and the HTML scan try each one)."""
    head = b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n" if html else b""
    return mail("spam", b"Spam from 192.0.2.7 " + sized(b"<", size), head)


def ips_sized(size: int) -> bytes:
    """``size`` bytes of distinct IPs, one per line."""
    lines = (f"Spam from 198.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(1, size // 24))
    return mail("spam", "\n".join(lines).encode()[:size])


def same_ip_sized(size: int) -> bytes:
    return mail("spam", sized(b"192.0.2.7 ", size))


def dashes_sized(size: int) -> bytes:
    """One line of ``size`` dashes (the forward-marker search)."""
    return mail("spam from 192.0.2.7", b"Spam from 192.0.2.7\n" + sized(b"-", size))


def short_lines_sized(size: int) -> bytes:
    """``size`` bytes of two-byte lines: millions of lines, each a step of every per-line pass."""
    return mail("spam from 192.0.2.7", b"Spam from 192.0.2.7\n" + sized(b"<\n", size))


def base64_newlines_sized(size: int) -> bytes:
    """A base64 body that decodes to newlines: the line count hides behind the encoding."""
    raw = base64.encodebytes(sized(b"a\n", size * 74 // 100))
    return mail("spam from 192.0.2.7", raw, b"Content-Transfer-Encoding: base64\r\n")


def many_parameters(count: int = 12_000) -> bytes:
    """A Content-Type with ``count`` parameters: the policy parses each, on every read."""
    return mail("spam", b"Spam from 192.0.2.7", b"Content-Type: text/plain" + b";a=b" * count + b"\r\n")


# name -> builder: what B7 (bench) times, and what tests/unit/test_abuse_hostile.py checks
# the outcome of (a complaint with the right IPs, or a refusal naming the limit).
HOSTILE_SHAPES: dict[str, Callable[[], bytes]] = {
    "blank_lines_1mib": lambda: blank_lines_sized(MiB),
    "less_than_1mib": lambda: less_than_sized(MiB),
    "less_than_html_1mib": lambda: less_than_sized(MiB, html=True),
    "ips_1mib": lambda: ips_sized(MiB),
    "deep_nesting": nested_multipart,
    "yaml_alias_bomb": xarf_alias_bomb,
    "blank_lines_5mib": lambda: blank_lines_sized(NEAR_LIMIT),
    "blank_lines_with_spaces_5mib": lambda: blank_lines_with_spaces_sized(NEAR_LIMIT),
    "less_than_5mib": lambda: less_than_sized(NEAR_LIMIT),
    "less_than_html_5mib": lambda: less_than_sized(NEAR_LIMIT, html=True),
    "ips_5mib": lambda: ips_sized(NEAR_LIMIT),
    "same_ip_5mib": lambda: same_ip_sized(NEAR_LIMIT),
    "dashes_5mib": lambda: dashes_sized(NEAR_LIMIT),
    "short_lines_5mib": lambda: short_lines_sized(NEAR_LIMIT),
    "base64_newlines_5mib": lambda: base64_newlines_sized(NEAR_LIMIT),
    "many_parameters": many_parameters,
}
