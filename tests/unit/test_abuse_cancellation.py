"""The §7.2 cancellation rule: SBL AND activated this calendar month AND exactly one service."""

from __future__ import annotations

import datetime as dt

import pytest

from ipsinfra.abuse import Verdict, should_cancel
from ipsinfra.models import Client

T0 = dt.datetime(2025, 3, 31, 23, 0, tzinfo=dt.UTC)


def verdict(category: str = "spamhaus_sbl") -> Verdict:
    return Verdict(category=category, immediate=True, deadline=T0, reasons=[], matched=[])


def client(activated: dt.date | None, services: int = 1) -> Client:
    return Client(id="c1", name="Ivan Petrov", address="Moscow", activated=activated, services=services)


@pytest.mark.parametrize(
    ("activated", "today", "services", "cancel"),
    [
        (dt.date(2025, 3, 1), dt.date(2025, 3, 31), 1, True),  # first and last day of the month
        (dt.date(2025, 3, 31), dt.date(2025, 3, 31), 1, True),
        (dt.date(2025, 2, 28), dt.date(2025, 3, 1), 1, False),  # yesterday, but last month
        (dt.date(2024, 3, 15), dt.date(2025, 3, 20), 1, False),  # same month, other year
        (dt.date(2024, 12, 31), dt.date(2025, 1, 1), 1, False),  # year boundary
        (dt.date(2025, 3, 2), dt.date(2025, 3, 20), 2, False),  # two services
        (dt.date(2025, 3, 2), dt.date(2025, 3, 20), 0, False),
        (None, dt.date(2025, 3, 20), 1, False),  # unknown activation
        (dt.date(2025, 4, 1), dt.date(2025, 3, 31), 1, False),  # activation in the future
    ],
)
def test_rule(activated: dt.date | None, today: dt.date, services: int, cancel: bool) -> None:
    decision = should_cancel(verdict(), client(activated, services), today)
    assert decision.cancel is cancel
    assert "§7.2" in decision.reason


@pytest.mark.parametrize("category", ["malware", "botnet", "spam", "csam"])
def test_only_sbl_cancels(category: str) -> None:
    decision = should_cancel(verdict(category), client(dt.date(2025, 3, 2)), dt.date(2025, 3, 3))
    assert not decision.cancel
    assert category in decision.reason


def test_service_activation_overrides_the_clients() -> None:
    old_client = client(dt.date(2023, 1, 1))
    assert should_cancel(
        verdict(), old_client, dt.date(2025, 3, 3), service_activated=dt.date(2025, 3, 1)
    ).cancel
    assert not should_cancel(
        verdict(), client(dt.date(2025, 3, 1)), dt.date(2025, 3, 3), service_activated=dt.date(2025, 2, 1)
    ).cancel
