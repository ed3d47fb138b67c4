from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsinfra import passwords
from ipsinfra.errors import InvalidInput, WeakPassword


@settings(max_examples=300)
@given(st.integers(min_value=passwords.MIN_LENGTH, max_value=64))
def test_every_generated_password_is_acceptable(length: int) -> None:
    pw = passwords.generate(length)
    assert len(pw) == length
    # a generated password holds no digit outside 34679 and no "(" or ".": never a name or order
    assert passwords.check(pw, name="VPS1001(10.10)", order=1001) == pw
    assert not set(pw) & passwords.AMBIGUOUS
    assert any(c.islower() for c in pw) and any(c.isupper() for c in pw)
    assert any(c.isdigit() for c in pw) and any(c in passwords.SYMBOLS for c in pw)


def test_generated_passwords_differ() -> None:
    assert len({passwords.generate() for _ in range(200)}) == 200


@pytest.mark.parametrize("length", [0, 5, 11, 129, "20", True])
def test_generate_bad_length(length: object) -> None:
    with pytest.raises(InvalidInput, match="length"):
        passwords.generate(length)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pw", "reason"),
    [
        ("Order1234!", "word + digits + symbol"),
        ("Password2024#", "word + digits + symbol"),
        ("Qwerty123456!", "word + digits + symbol"),
        ("Hosting2017!!", "word + digits + symbol"),
        ("short1A!", "too short"),
        ("alllowercase12!x", "an upper-case letter"),
        ("NoDigitsHere!!xY", "a digit"),
        ("NoSymbols12345xY", "a symbol"),
        # issue 20: accepted by the hand-written checker, refused by zxcvbn
        ("P@ssw0rd123!", "zxcvbn score 2, 4 required (This is similar to a commonly used password"),
        ("1qaz2wsx3edc!Q", "zxcvbn score 1, 4 required (This is similar to a commonly used password"),
        ("Zaq12wsx!Xsw2", "zxcvbn score 3, 4 required"),
        ("Xk9!Pz7#Xk9!Pz7#", "too easy to guess"),
        ("Aa1!Aa1!Aa1!Aa1!", "Avoid repeated words and characters"),
        ("Hosting2017!!", "too easy to guess"),
    ],
)
def test_problems_refuses(pw: str, reason: str) -> None:
    found = passwords.problems(pw)
    assert any(reason in p for p in found), found
    for p in found:
        assert pw not in p  # reasons never quote the password


def test_order_and_name_inside() -> None:
    assert "contains the order number" in passwords.problems("Xk9!5512Pz7#mW", order=5512)
    assert "contains the server's name" in passwords.problems("xVPS5512(34.56)Q!", name="VPS5512(34.56)")


def test_check_raises_without_the_password() -> None:
    with pytest.raises(WeakPassword) as exc:
        passwords.check("Order1234!")
    assert "Order1234!" not in str(exc.value)
    assert isinstance(exc.value, ValueError)
    good = passwords.generate()
    assert passwords.check(good) == good


def test_generate_gives_up_loudly_when_the_checker_refuses_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bounded draws: a broken checker is an error, never an endless loop (a hung provisioning).
    calls: list[str] = []

    def refuse(password: str, **_: object) -> list[str]:
        calls.append(password)
        return ["refused"]

    monkeypatch.setattr(passwords, "problems", refuse)
    with pytest.raises(RuntimeError, match="no acceptable password in 1000 draws") as err:
        passwords.generate()
    assert len(calls) == 1000
    assert not any(pw in str(err.value) for pw in calls)  # no candidate leaks into the message
