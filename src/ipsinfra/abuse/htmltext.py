"""The text of an HTML mail part, in one linear scan (no regex, no ``html.parser``)."""

from __future__ import annotations

import html
import re

__all__ = ["decode_entities", "html_to_text"]

_TAG_NAME_RE = re.compile(r"/?([a-z][a-z0-9]{0,15})")
_TAG_START_RE = re.compile(r"<[A-Za-z/!?]")
# Numeric character references past U+10FFFF: html.unescape would call int() on
# thousands of digits (Python's int-from-str limit raises ValueError).
_LONG_CHARREF_RE = re.compile(r"&#(?:[xX]0*[0-9a-fA-F]{7,}|0*[0-9]{8,});?")
_NO_BREAK_SPACES = {0xA0: " ", 0x202F: " "}
_BLOCK_TAGS = frozenset(
    "br p div tr li ul ol table h1 h2 h3 h4 h5 h6 blockquote pre hr dt dd section article".split()
)


def html_to_text(markup: str) -> str:
    """The text of an HTML part: tags, comments, scripts and styles removed, entities decoded.

    A single forward scan (each ``find`` starts where the last one ended), so
    linear in ``markup`` however it is broken. Regex stripping was quadratic on
    ``<script`` without ``</script>`` (60 s for 200 KB), and so is
    ``html.parser`` before Python 3.11.13 / 3.12.11 (CPython gh-135462: 60 s
    for 200 KB of ``<a ``).

    No-break spaces (``&nbsp;``, U+00A0, U+202F) become plain spaces: the
    statement is quoted back in our letters, and reads the same.

    >>> html_to_text("<p>Spam&nbsp;from <b>192.0.2.7</b><script>x()</script></p>")
    ' Spam from  192.0.2.7 \\n'
    """
    lower = markup.lower()
    out: list[str] = []
    i, n = 0, len(markup)
    while i < n:
        # The next "<" that starts a tag; a "<" that does not ("a < b") is text, as a
        # browser reads it, and is skipped in C (one Python step each: 1 s for 1 MB of "<").
        start = _TAG_START_RE.search(markup, i)
        if start is None:
            out.append(markup[i:])
            break
        lt = start.start()
        out.append(markup[i:lt])
        if markup.startswith("<!--", lt):
            end = markup.find("-->", lt + 4)
            i = n if end < 0 else end + 3
            continue
        gt = markup.find(">", lt + 1)
        if gt < 0:  # a tag left open: the rest is inside it
            break
        i = gt + 1
        m = _TAG_NAME_RE.match(lower, lt + 1)
        name = m.group(1) if m else ""
        closing = lower.startswith("</", lt)
        if name in ("script", "style") and not closing and markup[gt - 1 : gt] != "/":
            end = lower.find("</" + name, i)
            if end < 0:
                break
            close = markup.find(">", end)
            i = n if close < 0 else close + 1
            continue
        out.append("\n" if name in _BLOCK_TAGS and (name != "p" or closing) else " ")
    return decode_entities("".join(out)).translate(_NO_BREAK_SPACES)


def decode_entities(text: str) -> str:
    """``text`` with HTML character references decoded (``203&#46;0.113.10`` -> ``203.0.113.10``).

    :func:`html.unescape`, after references past U+10FFFF are replaced with
    U+FFFD: unescape would call ``int()`` on thousands of digits. Linear in
    ``text``, and never longer than it.
    """
    if "&" not in text:
        return text
    return html.unescape(_LONG_CHARREF_RE.sub("\ufffd", text))
