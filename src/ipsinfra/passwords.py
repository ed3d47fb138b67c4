"""Passwords for orders (§4.8): generated, never a simple pattern.

>>> len(generate())
20
>>> problems("Order1234!")[:1]
['follows the simple pattern word + digits + symbol']
"""

from __future__ import annotations

import re
import secrets
import string

from ipsinfra.errors import InvalidInput, WeakPassword

# Look-alikes (0/O/o, 1/l/I, 5/S, 2/Z, 8/B) are left out: passwords get read
# out over the phone and typed from tickets. Symbols are ones that survive
# shells, YAML, cloud-init and URLs without quoting trouble.
LOWER = "abcdefghijkmnpqrstuvwxyz"
UPPER = "ACDEFGHJKLMNPQRTUVWXY"
DIGITS = "34679"
SYMBOLS = "!#%+-=@^_"
ALPHABET = LOWER + UPPER + DIGITS + SYMBOLS
AMBIGUOUS = set("0Oo1lI|5S2Z8B`'\" ")

MIN_LENGTH = 12
MAX_LENGTH = 128

# Words people build "patterns" from; a dictionary check of substrings >= 4.
WORDS = frozenset(
    """
    order password passwd pass admin root user login welcome qwerty letmein
    secret server hosting vps vds client support master dragon monkey summer
    winter spring autumn love hello test guest default changeme trust abuse
    parol privet moscow russia
    """.split()
)
KEYBOARD_ROWS = (
    "1234567890-=",
    "qwertyuiop[]",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "qazwsxedcrfvtgbyhnujmikolp",
    "йцукенгшщзхъ",
    "фывапролджэ",
    "ячсмитьбю",
)
_SEQUENCES = (string.ascii_lowercase, string.digits, *KEYBOARD_ROWS)


def generate(length: int = 20) -> str:
    """A random password of ``length`` with every class present, from ``secrets``.

    Drawn again (rarely) until :func:`problems` finds nothing, so a generated
    password is acceptable by construction.
    """
    if not isinstance(length, int) or isinstance(length, bool) or not MIN_LENGTH <= length <= MAX_LENGTH:
        raise InvalidInput(f"length: value {length!r}: must be an integer {MIN_LENGTH}-{MAX_LENGTH}")
    classes = (LOWER, UPPER, DIGITS, SYMBOLS)
    while True:
        chars = [secrets.choice(c) for c in classes]
        chars += [secrets.choice(ALPHABET) for _ in range(length - len(classes))]
        # Fisher-Yates with secrets, so the class positions are not predictable.
        for i in range(len(chars) - 1, 0, -1):
            j = secrets.randbelow(i + 1)
            chars[i], chars[j] = chars[j], chars[i]
        candidate = "".join(chars)
        if not problems(candidate):
            return candidate


def _has_run(lowered: str, run: int) -> str | None:
    for seq in _SEQUENCES:
        for direction in (seq, seq[::-1]):
            for i in range(len(direction) - run + 1):
                if direction[i : i + run] in lowered:
                    return direction[i : i + run]
    return None


def problems(
    password: str,
    *,
    name: str | None = None,
    order: int | str | None = None,
    min_length: int = MIN_LENGTH,
) -> list[str]:
    """Why ``password`` is unacceptable under §4.8; an empty list means acceptable.

    The reasons never quote the password itself.
    """
    if not isinstance(password, str):
        return ["is not a string"]
    found: list[str] = []
    lowered = password.lower()
    if len(password) < min_length:
        found.append(f"too short: {len(password)} characters, at least {min_length} needed")
    missing = [
        label
        for label, test in (
            ("a lower-case letter", str.islower),
            ("an upper-case letter", str.isupper),
            ("a digit", str.isdigit),
        )
        if not any(test(ch) for ch in password)
    ]
    if not any(not ch.isalnum() for ch in password):
        missing.append("a symbol")
    if missing:
        found.append("missing " + ", ".join(missing))
    if re.fullmatch(r"[^\W\d_]+[\W_]*\d+[\W_]*", password) or re.fullmatch(r"\d+[^\W\d_]+[\W_]+", password):
        found.insert(0, "follows the simple pattern word + digits + symbol")
    words = sorted(w for w in WORDS if len(w) >= 4 and w in lowered)
    if words:
        found.append("contains a dictionary word: " + ", ".join(words))
    walk = _has_run(lowered, 4)
    if walk:
        found.append("contains a keyboard walk or sequence")
    if re.search(r"(.)\1\1", password):
        found.append("repeats one character three times or more")
    elif re.search(r"(.{2,})\1", password):
        found.append("repeats a group of characters")
    if order is not None and str(order) and str(order) in password:
        found.append("contains the order number")
    if name:
        compact = re.sub(r"[^0-9a-z]", "", name.lower())
        if name.lower() in lowered or (len(compact) >= 4 and compact in re.sub(r"[^0-9a-z]", "", lowered)):
            found.append("contains the server's name")
    if len(set(password)) < min(len(password), 8) // 2 + 2 and len(password) >= 6:
        found.append("uses too few distinct characters")
    return found


def check(password: str, *, name: str | None = None, order: int | str | None = None) -> str:
    """Return ``password`` if acceptable, else raise WeakPassword listing the reasons."""
    reasons = problems(password, name=name, order=order)
    if reasons:
        raise WeakPassword("password: refused (§4.8): " + "; ".join(reasons))
    return password
