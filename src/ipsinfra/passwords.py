"""Passwords for orders (§4.8): generated, never a simple pattern.

Strength is judged by zxcvbn (the Python port of Dropbox's estimator: dictionaries
and l33t, keyboard graphs, sequences, repeats, dates). A password needs zxcvbn's
top score, :data:`MIN_SCORE` = 4 (an estimated 10^10 guesses or more). Score 3
(10^8) still lets through what §4.8 forbids: the keyboard walk ``Zaq12wsx!Xsw2``
and word + year + symbols ``Hosting2017!!`` both score 3, while 2,000 generated
passwords of the shortest length (12) all score 4. The house rules stay on top:
the length floor, every character class, the ``Order1234!`` shape, the order
number and the server's name (also handed to zxcvbn as ``user_inputs``, with
the trade's own words), and enough distinct characters.

>>> len(generate())
20
>>> problems("Order1234!")[:1]
['follows the simple pattern word + digits + symbol']
"""

from __future__ import annotations

import re
import secrets

from zxcvbn import zxcvbn

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

# zxcvbn's score 0-4; 4 means "very unguessable" (>= 10^10 guesses). See the module docstring.
MIN_SCORE = 4
# zxcvbn's cost grows with length and the port refuses more than 72 characters
# (its max_length default): only the first 72 are estimated. Guessing the whole is at
# least as hard as guessing its first 72 characters; the house rules still read it all.
ZXCVBN_CHARS = 72
# Words of the trade and Russian words in Latin letters. zxcvbn knows them all, but
# ranked 200-4,600 in its frequency lists; passed as user_inputs they rank 1-10, so
# "Hosting#7xQk9" drops from score 4 to 3. ("order" ranks 203 already; "vps" and
# "vds" are three letters, cheap to brute-force either way.)
HOUSE_WORDS = (
    "hosting",
    "server",
    "client",
    "support",
    "abuse",
    "admin",
    "parol",
    "privet",
    "moscow",
    "russia",
)


_MAX_DRAWS = 1000


def generate(length: int = 20) -> str:
    """A random password of ``length`` with every class present, from ``secrets``.

    Drawn again (rarely) until :func:`problems` finds nothing, so a generated
    password is acceptable by construction.
    """
    if not isinstance(length, int) or isinstance(length, bool) or not MIN_LENGTH <= length <= MAX_LENGTH:
        raise InvalidInput(f"length: value {length!r}: must be an integer {MIN_LENGTH}-{MAX_LENGTH}")
    classes = (LOWER, UPPER, DIGITS, SYMBOLS)
    for _ in range(_MAX_DRAWS):
        chars = [secrets.choice(c) for c in classes]
        chars += [secrets.choice(ALPHABET) for _ in range(length - len(classes))]
        # Fisher-Yates with secrets, so the class positions are not predictable.
        for i in range(len(chars) - 1, 0, -1):
            j = secrets.randbelow(i + 1)
            chars[i], chars[j] = chars[j], chars[i]
        candidate = "".join(chars)
        if not problems(candidate):
            return candidate
    # Unreachable with a sound checker (a draw is refused about once in thousands): a checker
    # that refuses everything fails loudly instead of looping forever.
    raise RuntimeError(f"no acceptable password in {_MAX_DRAWS} draws: the §4.8 checker refuses everything")


def _estimate(password: str, user_inputs: list[str]) -> str | None:
    """zxcvbn's verdict as one reason (score, warning, suggestions), or None when strong enough.

    zxcvbn's feedback is fixed text; it never quotes the password.
    """
    result = zxcvbn(password[:ZXCVBN_CHARS], user_inputs=user_inputs)
    score = int(result["score"])
    if score >= MIN_SCORE:
        return None
    reason = f"too easy to guess: zxcvbn score {score}, {MIN_SCORE} required"
    feedback = result.get("feedback") or {}
    advice = [str(feedback.get("warning") or "").rstrip(".")]
    advice += [str(s).rstrip(".") for s in feedback.get("suggestions") or ()]
    advice = [a for a in advice if a]
    return reason + (" (" + "; ".join(advice) + ")" if advice else "")


def problems(
    password: str,
    *,
    name: str | None = None,
    order: int | str | None = None,
    min_length: int = MIN_LENGTH,
) -> list[str]:
    """Why ``password`` is unacceptable under §4.8; an empty list means acceptable.

    The reasons never quote the password itself.

    >>> problems("1qaz2wsx3edc!Q")[0][:42]
    'too easy to guess: zxcvbn score 1, 4 requi'
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
    user_inputs = list(HOUSE_WORDS)
    order_text = "" if order is None else str(order)
    if order_text:
        user_inputs.append(order_text)
        if order_text in password:
            found.append("contains the order number")
    if name:
        compact = re.sub(r"[^0-9a-z]", "", name.lower())
        user_inputs += [name, compact]
        if name.lower() in lowered or (len(compact) >= 4 and compact in re.sub(r"[^0-9a-z]", "", lowered)):
            found.append("contains the server's name")
    if len(password) >= 6 and len(set(password)) < min(len(password), 8) // 2 + 2:
        found.append("uses too few distinct characters")
    guessable = _estimate(password, user_inputs) if password else None  # zxcvbn fails on ''
    if guessable:
        found.append(guessable)
    return found


def check(password: str, *, name: str | None = None, order: int | str | None = None) -> str:
    """Return ``password`` if acceptable, else raise WeakPassword listing the reasons."""
    reasons = problems(password, name=name, order=order)
    if reasons:
        raise WeakPassword("password: refused (§4.8): " + "; ".join(reasons))
    return password
