"""The embedded lab as a fixture: real libvirtd + qemu nodes, SSH sides, fakepve."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ipsinfra.lab.fleet import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh lab per test (about 5 s): tests reboot nodes and stop guests."""
    with Lab(mode="daemon") as running:
        yield running
