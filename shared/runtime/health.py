"""Whether a stage is well: each subscription's movement, and the /healthz answer built from it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

HealthCheck = Callable[[], Awaitable[bool]]
# How long /healthz waits for one check (they run together): a probe gets its answer within ~3 s.
HEALTH_CHECK_TIMEOUT_S = 2.0
HEALTH_ANSWERS: dict[int | str, dict[str, Any]] = {
    503: {"description": "The broker or the database does not answer, or a subscription is stuck (named)"},
}


@dataclass
class Flow:
    """How one subscription is moving: since when its current batch runs, since when it keeps failing."""

    topic: str
    busy_since: float | None = None
    failing_since: float | None = None
    behind: int | None = None  # records waiting on the broker after the last poll (batch subscriptions)

    def stuck(self, now: float, after_s: float) -> str | None:
        if self.failing_since is not None and now - self.failing_since > after_s:
            return f"{self.topic}: failing for {now - self.failing_since:.0f} s; its partition does not move"
        if self.busy_since is not None and now - self.busy_since > after_s:
            return f"{self.topic}: one batch running for {now - self.busy_since:.0f} s"
        return None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self.busy_since = time.monotonic()
        try:
            yield
        except BaseException:
            self.failing_since = self.failing_since or time.monotonic()
            raise
        else:
            self.failing_since = None
        finally:
            self.busy_since = None

    @contextlib.contextmanager
    def settling(self) -> Iterator[None]:
        """A handled batch's sends awaited while the next batch runs: a fault marks the flow failing."""
        try:
            yield
        except Exception:
            self.failing_since = self.failing_since or time.monotonic()
            raise


def stuck(flows: Sequence[Flow], after_s: float) -> list[str]:
    """The subscriptions failing, or in one batch, for longer than ``after_s``."""
    now = time.monotonic()
    found = (flow.stuck(now, after_s) for flow in flows)
    return [reason for reason in found if reason]


async def checked(checks: Sequence[HealthCheck]) -> bool:
    """Whether every check answers True within ``HEALTH_CHECK_TIMEOUT_S`` (they run together)."""
    return all(await asyncio.gather(*(_safe(check) for check in checks)))


async def _safe(check: HealthCheck) -> bool:
    """The check's answer, False when it fails or does not answer within ``HEALTH_CHECK_TIMEOUT_S``.

    A database that hangs (its process stopped, a network that drops packets)
    never refuses a ping: without a bound /healthz would hang with it, and a
    probe would see no answer instead of a 503.
    """
    try:
        return await asyncio.wait_for(check(), HEALTH_CHECK_TIMEOUT_S)
    except Exception:  # a failing or silent health check is an unhealthy answer, not a crash
        return False
