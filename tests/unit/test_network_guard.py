"""The test suite's own network rule (tests/conftest.py) really refuses."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import ForbiddenDestination


@pytest.mark.parametrize("address", [("203.0.113.101", 22), ("10.0.0.1", 53), ("8.8.8.8", 53)])
def test_connect_outside_loopback_is_refused(address: tuple[str, int]) -> None:
    with socket.socket() as sock, pytest.raises(ForbiddenDestination):
        sock.connect(address)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(ForbiddenDestination):
        udp.sendto(b"x", address)


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
