from __future__ import annotations

import threading

import pytest

from ipsinfra.errors import OperationTimeout
from ipsinfra.steps import with_deadline


def test_a_hanging_step_is_named() -> None:
    release = threading.Event()
    with pytest.raises(OperationTimeout, match=r"kvm1: step 'clone' did not finish within 0\.2 s"):
        with_deadline("clone", 0.2, release.wait, node="kvm1")
    release.set()


def test_the_steps_own_timeout_keeps_its_message() -> None:
    def agent_never_answers() -> None:
        raise OperationTimeout("guest agent did not answer within 30 s", node="kvm1")

    with pytest.raises(OperationTimeout, match="guest agent did not answer"):
        with_deadline("set_password", 5, agent_never_answers, node="kvm1")


def test_result_and_no_deadline() -> None:
    assert with_deadline("x", 1, lambda: 42) == 42
    assert with_deadline("x", None, lambda: 7) == 7
