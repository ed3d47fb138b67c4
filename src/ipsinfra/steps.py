"""Running one step of an operation with a deadline, the step named on failure."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

from ipsinfra.errors import OperationTimeout

T = TypeVar("T")


def with_deadline(step: str, seconds: float | None, func: Callable[[], T], *, node: str | None = None) -> T:
    """Run ``func``; raise OperationTimeout naming ``step`` if it takes longer than ``seconds``.

    The call runs in a worker thread so a backend that hangs (slow storage, a
    clone that never ends) cannot hang the caller; the thread is left to
    finish on its own.
    """
    if seconds is None:
        return func()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ipsinfra-{step}")
    try:
        future = pool.submit(func)
        try:
            return future.result(timeout=seconds)
        except TimeoutError:
            if future.done():
                raise  # the step's own timeout (a driver's deadline), with its own message
            raise OperationTimeout(f"step {step!r} did not finish within {seconds:g} s", node=node) from None
    finally:
        pool.shutdown(wait=False)
