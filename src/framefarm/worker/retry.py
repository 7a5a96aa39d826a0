"""The node's one retry policy: a request that failed in transit, or was answered by a
gateway or storage that is momentarily down, is tried again with exponential backoff
(0.5 s, doubling, plus up to 0.5 s of jitter so nodes that lost the server together do not
all come back in the same instant; at most 10 s) until the caller's patience runs out."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import tenacity

log = logging.getLogger("framefarm.worker")
T = TypeVar("T")

FIRST_DELAY = 0.5
MAX_DELAY = 10.0
JITTER = 0.5


class ServerUnavailable(httpx.TransportError):
    """The server could not be reached within the node's patience."""


class TryAgain(Exception):
    """An answer worth repeating the request for (502/503/504 from the API, 5xx from
    storage)."""


def base_delay(attempt: int) -> float:
    """The pause after attempt number ``attempt`` (from 1), before jitter."""
    return min(FIRST_DELAY * 2.0 ** (attempt - 1), MAX_DELAY)


def pause(state: tenacity.RetryCallState) -> float:
    """The pause after a failed attempt: its base delay plus jitter, at most MAX_DELAY."""
    return min(base_delay(state.attempt_number) + random.uniform(0, JITTER), MAX_DELAY)


def problem(exc: BaseException | None) -> str:
    return (str(exc) or type(exc).__name__) if exc is not None else "no answer"


def retrying(attempt: Callable[[], T], *, what: str, patience: float,
             sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> T:
    """``attempt()``, again after a transport error or TryAgain while the next pause still
    ends within ``patience`` seconds (0: one attempt); then ServerUnavailable. Any other
    exception propagates at once."""
    deadline = clock() + patience

    def out_of_patience(state: tenacity.RetryCallState) -> bool:
        # On the injected clock (tenacity times itself with the real one), and on the
        # jitter-free pause so the decision does not depend on tenacity's call order.
        return clock() + base_delay(state.attempt_number) > deadline

    def warn(state: tenacity.RetryCallState) -> None:
        seconds = state.next_action.sleep if state.next_action else 0.0
        failure = state.outcome.exception() if state.outcome else None
        log.warning("%s: %s; retrying in %.1fs", what, problem(failure), seconds)

    policy = tenacity.Retrying(
        sleep=sleep, stop=out_of_patience, wait=pause, before_sleep=warn,
        retry=tenacity.retry_if_exception_type((httpx.TransportError, TryAgain)))
    try:
        return policy(attempt)
    except tenacity.RetryError as exc:
        last = exc.last_attempt.exception()
        raise ServerUnavailable(f"{what}: {problem(last)}") from last
