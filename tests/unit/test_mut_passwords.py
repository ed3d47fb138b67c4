"""passwords: boundaries and negative cases that kill mutants (issue 23).

Each test asserts behaviour: what is refused, with which reason, and what is not.
"""

from __future__ import annotations

import pytest

from ipsinfra import passwords
from ipsinfra.errors import InvalidInput, WeakPassword

# Scores 4 with zxcvbn and passes every house rule: the control for each negative case.
STRONG = "Kx7#mQ9!tRw4Pz"
NAME = "VPS5512(34.56)"


def test_a_strong_password_is_accepted() -> None:
    assert passwords.problems(STRONG) == []
    assert passwords.check(STRONG) == STRONG
    assert passwords.check(STRONG, name=NAME, order=5512) == STRONG


def test_not_a_string() -> None:
    assert passwords.problems(1234567890123) == ["is not a string"]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- generate


@pytest.mark.parametrize("length", [passwords.MIN_LENGTH, passwords.MAX_LENGTH, 73])
def test_generate_at_the_length_bounds(length: int) -> None:
    pw = passwords.generate(length)
    assert len(pw) == length
    assert set(pw) <= set(passwords.ALPHABET)
    assert passwords.problems(pw) == []


@pytest.mark.parametrize("length", [11, 129, 12.0, False])
def test_generate_refuses_with_the_range(length: object) -> None:
    with pytest.raises(InvalidInput) as exc:
        passwords.generate(length)  # type: ignore[arg-type]
    assert str(exc.value) == f"length: value {length!r}: must be an integer 12-128"


def test_generate_default_is_20() -> None:
    assert len(passwords.generate()) == 20


def test_no_generated_password_is_refused_2000(monkeypatch: pytest.MonkeyPatch) -> None:
    """2,000 passwords of the shortest length pass check(); and generate() hardly ever has to
    draw again (it loops until problems() is empty): the zxcvbn threshold fits the generator."""
    real = passwords.problems
    draws: list[bool] = []

    def counting(password: str, **kwargs: object) -> list[str]:
        found = real(password, **kwargs)  # type: ignore[arg-type]
        draws.append(bool(found))
        return found

    monkeypatch.setattr(passwords, "problems", counting)
    for _ in range(2000):
        pw = passwords.generate(passwords.MIN_LENGTH)
        assert real(pw, name="VPS1001(10.10)", order=1001) == []
    assert len(draws) - 2000 == sum(draws) <= 20  # observed: 0 in 2,000


def _class_of(ch: str) -> int:
    for index, chars in enumerate((passwords.LOWER, passwords.UPPER, passwords.DIGITS, passwords.SYMBOLS)):
        if ch in chars:
            return index
    raise AssertionError(f"{ch!r} is in no class")


def test_the_class_positions_are_shuffled() -> None:
    """Without the shuffle, characters 1-4 would always be lower, upper, digit, symbol.

    Shuffled, position i holds a character of class i with probability below 0.5
    (about 0.35 for lower-case, less for the others), so 400 draws all of class i
    has probability below 0.5**400 (1e-120): this cannot flake.
    """
    samples = [passwords.generate(passwords.MIN_LENGTH) for _ in range(400)]
    for position in range(4):
        classes = [_class_of(pw[position]) for pw in samples]
        assert classes.count(position) < len(samples), position
        # every class turns up at every position: P(a class never at a position) < 0.92**400
        assert set(classes) == {0, 1, 2, 3}, position
    # and the last characters, drawn from the whole alphabet, also get the class draws:
    # without the shuffle no position past 4 would be guaranteed to hold anything in particular
    last = [_class_of(pw[-1]) for pw in samples]
    assert set(last) == {0, 1, 2, 3}


# --------------------------------------------------------------------------- house rules


@pytest.mark.parametrize(
    ("pw", "reasons"),
    [
        ("Kx7#mQ9!tRw", ["too short: 11 characters, at least 12 needed"]),
        ("KX7#MQ9!TRW4PZ", ["missing a lower-case letter"]),
        ("kx7#mq9!trw4pz", ["missing an upper-case letter"]),
        ("Kx%#mQa!tRwjPz", ["missing a digit"]),
        ("Kx7tmQ9ktRw4Pz", ["missing a symbol"]),
    ],
)
def test_one_house_rule_each(pw: str, reasons: list[str]) -> None:
    assert passwords.problems(pw) == reasons


def test_all_classes_missing_in_order() -> None:
    assert passwords.problems("") == [
        "too short: 0 characters, at least 12 needed",
        "missing a lower-case letter, an upper-case letter, a digit, a symbol",
    ]


def test_min_length_is_a_parameter() -> None:
    assert passwords.problems(STRONG, min_length=15) == ["too short: 14 characters, at least 15 needed"]
    assert passwords.problems(STRONG, min_length=14) == []


@pytest.mark.parametrize("pw", ["Order1234!", "order1234", "Order1234!!", "Order_1234_", "1234Order!"])
def test_the_simple_pattern_comes_first(pw: str) -> None:
    assert passwords.problems(pw)[0] == "follows the simple pattern word + digits + symbol"


@pytest.mark.parametrize("pw", [STRONG, "1234Order", "Or1der234!xx"])
def test_not_the_simple_pattern(pw: str) -> None:
    assert "follows the simple pattern word + digits + symbol" not in passwords.problems(pw)


def test_check_passes_the_order_number() -> None:
    pw = "Kx7#mQ9!tR5512"
    assert passwords.check(pw) == pw
    assert passwords.check(pw, order=5513) == pw
    for order in (5512, "5512"):
        with pytest.raises(WeakPassword) as exc:
            passwords.check(pw, order=order)
        assert str(exc.value) == "password: refused (§4.8): contains the order number"


def test_no_order_means_no_order_rule() -> None:
    for pw in (STRONG, "Kx7#mQ9!tRXXXXw", "Kx7#mQ9!tRNonew"):
        assert passwords.problems(pw) == []
        assert passwords.problems(pw, order="") == []
        assert passwords.problems(pw, order=None) == []


def test_check_passes_the_name() -> None:
    pw = "Kx7#mQ9!vps5512(34.56)"
    assert passwords.check(pw) == pw
    with pytest.raises(WeakPassword) as exc:
        passwords.check(pw, name=NAME)
    assert str(exc.value).startswith("password: refused (§4.8): contains the server's name")


def test_check_joins_every_reason() -> None:
    with pytest.raises(WeakPassword) as exc:
        passwords.check("kx7#mq9!trw4p")
    assert str(exc.value) == "password: refused (§4.8): missing an upper-case letter"
    with pytest.raises(WeakPassword) as exc:
        passwords.check("kx7mq9trw4p")
    assert str(exc.value) == (
        "password: refused (§4.8): too short: 11 characters, at least 12 needed; "
        "missing an upper-case letter, a symbol"
    )


@pytest.mark.parametrize(
    "pw",
    [
        "Kx7#VPS5512(34.56)q",  # as written
        "Kx7#vps5512(34.56)q",  # any case
        "Kx7#vps-5512-34-56q",  # punctuation changed
        "Kx7#Vps_5512_34_56!Q",
        "vps5512.34.56#Kx7q",
    ],
)
def test_the_server_name_rule(pw: str) -> None:
    assert "contains the server's name" in passwords.problems(pw, name=NAME)
    assert "contains the server's name" not in passwords.problems(pw)
    assert "contains the server's name" not in passwords.problems(pw, name="")
    assert "contains the server's name" not in passwords.problems(pw, name="VPS5513(34.56)")


def test_the_server_name_rule_needs_four_compact_characters() -> None:
    # "ab-cd" compacts to "abcd" (4): found with other punctuation; "ab-c" (3) is not looked for that way
    assert "contains the server's name" in passwords.problems("Kx7#a.b.c.d!mQ9tRw", name="ab-cd")
    assert "contains the server's name" not in passwords.problems("Kx7#a.b.c!mQ9tRwz", name="ab-c")
    # the name as written is found whatever its length
    assert "contains the server's name" in passwords.problems("Kx7#ab-c!mQ9tRwz", name="AB-C")


DISTINCT = "uses too few distinct characters"


@pytest.mark.parametrize(
    ("pw", "refused"),
    [
        ("abcd" * 3, True),  # 12 characters, 4 distinct (6 needed from 8 characters up)
        ("abcde" * 3, True),  # 5 distinct
        ("abcdef" * 2, False),  # 6 distinct
        ("abcdaab", True),  # 7 characters: 7 // 2 + 2 = 5 needed, 4 distinct
        ("abcdeaa", False),  # 7 characters, 5 distinct
        ("abcdaa", True),  # 6 characters: 3 + 2 = 5 needed, 4 distinct
        ("abcdea", False),  # 6 characters, 5 distinct
        ("aabbc", False),  # under 6 characters the rule does not apply
        ("a", False),
    ],
)
def test_the_distinct_characters_rule(pw: str, refused: bool) -> None:
    assert (DISTINCT in passwords.problems(pw)) is refused


# --------------------------------------------------------------------------- zxcvbn


@pytest.mark.parametrize(
    ("pw", "reason"),
    [
        (
            "1qaz2wsx3edc!Q",
            "too easy to guess: zxcvbn score 1, 4 required (This is similar to a commonly used "
            "password; Add another word or two. Uncommon words are better)",
        ),
        ("Zaq12wsx!Xsw2", "too easy to guess: zxcvbn score 3, 4 required"),
        (
            "P@ssw0rd123!",
            "too easy to guess: zxcvbn score 2, 4 required (This is similar to a commonly used "
            "password; Add another word or two. Uncommon words are better; Capitalization doesn't "
            "help very much; Predictable substitutions like '@' instead of 'a' don't help very much)",
        ),
    ],
)
def test_zxcvbn_reason_in_full(pw: str, reason: str) -> None:
    assert passwords.problems(pw) == [reason]
    with pytest.raises(WeakPassword) as exc:
        passwords.check(pw)
    assert str(exc.value) == "password: refused (§4.8): " + reason
    assert pw not in str(exc.value)


@pytest.mark.parametrize(
    "word",
    ["hosting", "server", "client", "support", "abuse", "admin", "parol", "privet", "moscow", "russia"],
)
def test_trade_words_count_as_dictionary_words(word: str) -> None:
    from zxcvbn import zxcvbn

    pw = word.capitalize() + "#7xQk9!"
    assert zxcvbn(pw)["score"] == 4  # zxcvbn alone would let it through
    assert passwords.problems(pw) == ["too easy to guess: zxcvbn score 3, 4 required"]
    # still a dictionary word when the server's name and the order number are given too
    assert passwords.problems(pw, name=NAME, order=5512) == ["too easy to guess: zxcvbn score 3, 4 required"]


def test_order_number_and_name_are_zxcvbn_user_inputs() -> None:
    # each scores 4 alone, 3 once zxcvbn knows the order number / the name
    assert passwords.problems("Kq7#mZ918273!") == []
    assert "too easy to guess: zxcvbn score 3, 4 required" in passwords.problems(
        "Kq7#mZ918273!", order=918273
    )
    assert passwords.problems("Kq7#Vps5512(34.56)") == []
    assert any(r.startswith("too easy to guess") for r in passwords.problems("Kq7#Vps5512(34.56)", name=NAME))
    # the compact form: "vps55123456"
    assert passwords.problems("Kq7#vps55123456Zm") == []
    assert "too easy to guess: zxcvbn score 3, 4 required" in passwords.problems(
        "Kq7#vps55123456Zm", name=NAME
    )


def test_long_passwords_are_estimated_on_their_first_72_characters() -> None:
    head = passwords.generate(72)
    # zxcvbn itself refuses more than 72 characters; check() does not
    assert passwords.problems(head + "a") == []
    assert passwords.problems(head + STRONG * 4) == []
    # what follows the first 72 is not estimated (the house rules still read it)
    assert passwords.problems(head + "password") == []
    assert passwords.problems(head + "5512", order=5512) == ["contains the order number"]
