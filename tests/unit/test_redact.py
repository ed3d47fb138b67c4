"""ipsinfra.redact: one redactor for every log record, quoted passwords included."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import pytest

from ipsinfra import redact


@pytest.fixture
def registered() -> Iterator[list[str]]:
    values: list[str] = []
    yield values
    redact.unregister(*values)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "PUT /qemu/101/config {'ciuser': 'client', 'cipassword': 'S3cret pw'}",
            "PUT /qemu/101/config {'ciuser': 'client', 'cipassword': '***'}",
        ),
        ("password=hunter22 user=x", "password=*** user=x"),
        ("password='x y z' and more", "password='***' and more"),
        ('{"password": "a \\"b\\" c", "n": 1}', '{"password": "***", "n": 1}'),
        ("ROOT_PASSWORD=xyz", "ROOT_PASSWORD=***"),
        ("b'username=root%40pam&password=abc%20def'", "b'username=root%40pam&password=***'"),
        ("Authorization: PVEAPIToken=root@pam!ipsinfra=1234-abcd next", "Authorization: *** next"),
        ("Cookie: PVEAuthCookie=PVE:root@pam:ABC::sig; path=/", "Cookie: PVEAuthCookie=***; path=/"),
        ("'token_value': 'deadbeef'", "'token_value': '***'"),
        (
            "nothing secret here: 52:54:00:aa:00:01 on Gi0/5",
            "nothing secret here: 52:54:00:aa:00:01 on Gi0/5",
        ),
    ],
)
def test_secret_assignments_are_masked_keys_kept(line: str, expected: str) -> None:
    assert redact.redact(line) == expected


def test_registered_values_are_masked_in_every_spelling(registered: list[str]) -> None:
    secret = "Canary/+ pw-7781"
    registered.append(secret)
    redact.register(secret)

    line = f"a {secret} b Canary%2F%2B%20pw-7781 c Canary%2F%2B+pw-7781"

    assert redact.redact(line) == "a *** b *** c ***"
    assert redact.redact("x ab y") == "x ab y"  # too short to register, never masked by value


def test_hostile_lines_cost_linear_time() -> None:
    started = time.monotonic()
    for line in ("password" * 200_000, 'password="' + "a" * 1_000_000, "'password' " * 100_000):
        redact.redact(line)
    assert time.monotonic() - started < 5


def test_install_redacts_records_for_handlers_added_later(registered: list[str]) -> None:
    redact.install()
    redact.install()  # idempotent
    registered.append("zz-tok-9931")
    redact.register("zz-tok-9931")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # added after install, as caplog or a user's would be
    logger = logging.getLogger("proxmoxer.core")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("POST %s %s", "https://pve/api2", {"cipassword": "quoted pw", "x": "zz-tok-9931"})
        try:
            raise ValueError("password=leaky in a traceback")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    text = stream.getvalue()
    assert "quoted pw" not in text and "zz-tok-9931" not in text and "leaky" not in text
    assert "'cipassword': '***'" in text and "ValueError: password=***" in text
