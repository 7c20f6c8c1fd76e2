"""The delivery policy every consume mode applies (design.md, "Delivery and failure").

- The body is parsed with its contract; one that breaks it (or does not fit its
  key) is unusable: kept in ``<topic>.dlq`` with the reason, and a status event
  says so when the VIN is readable. The partition goes on.
- A handler that finds a message it can never use raises ``Unusable``: same path.
- A fault no retry can mend (``PERMANENT``: the output too large for the broker,
  a number or document the database refuses) takes the same path at once.
- Any other exception is a transient fault (broker or database away): wait with
  growing back-off, then let it propagate, so the message is delivered again,
  uncommitted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from aiokafka.errors import MessageSizeTooLargeError
from bson.errors import InvalidDocument
from pydantic import BaseModel

from shared.contracts.builds import BuildRecord
from shared.contracts.events import State
from shared.identity import Identity, key_identity
from shared.kafka import ContractError, Record, key_text, parse_as
from shared.observability.metrics import TopicMeter

if TYPE_CHECKING:
    from shared.runtime.emitter import Emitter

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
# Why a parsed message does not fit the key it came with (None: it fits).
KeyCheck = Callable[[M, str], str | None]
# Faults a retry cannot mend: the message goes to the DLQ at once instead of stalling its partition.
PERMANENT = (MessageSizeTooLargeError, OverflowError, InvalidDocument)


class Unusable(Exception):
    """A message no retry can make usable: kept in the DLQ with ``reason``, never redelivered.

    ``state`` (failed by default, None for none) is said on the status topic
    for ``vin`` and ``revision``; ``build`` adds the group and build id.
    """

    def __init__(
        self,
        reason: str,
        *,
        vin: str = "",
        revision: int = 0,
        build: BuildRecord | None = None,
        state: State | None = State.FAILED,
    ) -> None:
        super().__init__(reason)
        self.reason, self.vin, self.revision, self.build, self.state = reason, vin, revision, build, state


class Backoff:
    """Waits longer after each consecutive failure; a success resets it.

    A handler whose transient fault (broker or database away) propagates has its
    message delivered again at once (the offset is not committed); waiting here
    first keeps that redelivery from spinning while the fault lasts.
    """

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.failures = 0

    def succeeded(self) -> None:
        self.failures = 0

    async def failed(self) -> None:
        delay = min(self.max_s, self.initial_s * (2**self.failures))
        self.failures += 1
        await asyncio.sleep(delay)

    async def retry(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run ``step`` until it succeeds, waiting out the back-off after each fault.

        For work that must be finished where it began: a step of a handler whose
        message, delivered again, would no longer ask for it.
        """
        while True:
            try:
                result = await step()
            except Exception:
                await self.failed()
            else:
                self.succeeded()
                return result


class Delivery(Generic[M]):
    """One subscription's delivery policy: how its messages are read, kept when unusable, and retried.

    ``broken_state`` is said on the status topic for the VIN ``identity`` reads
    from an unusable message (None: no status, for topics not keyed by VIN or
    read by the status fold itself); ``check_key`` says why a parsed message
    does not fit its key, or None.
    """

    def __init__(
        self,
        model: type[M],
        emitter: Emitter,
        backoff: Backoff,
        *,
        broken_state: State | None = State.FAILED,
        identity: Identity = key_identity,
        check_key: KeyCheck[M] | None = None,
        meter: TopicMeter | None = None,
    ) -> None:
        self.model, self.emitter, self.backoff = model, emitter, backoff
        self.broken_state, self.identity, self.check_key = broken_state, identity, check_key
        self.meter = meter or TopicMeter.unregistered()  # handled, dead-lettered, time per message

    def read(self, record: Record) -> M | Unusable:
        """The message as its contract, or why it is unusable (the contract, or its key)."""
        body = record.value or b""
        try:
            parsed = parse_as(self.model, body)
        except ContractError as exc:
            reason = str(exc)
        else:
            reason = (self.check_key(parsed, key_text(record)) if self.check_key else None) or ""
            if not reason:
                return parsed
        return self.unusable(record, reason)

    def unusable(self, record: Record, reason: str) -> Unusable:
        """``reason`` for ``record``, with the VIN and revision its key and bytes name when a status is said."""
        if self.broken_state is None:
            return Unusable(reason, state=None)
        vin, revision = self.identity(record.value or b"", key_text(record))
        return Unusable(reason, vin=vin, revision=revision, state=self.broken_state)

    async def handle(
        self, record: Record, parsed: M | Unusable, handler: Callable[[M], Awaitable[None]]
    ) -> None:
        """Hand a read message to ``handler``; what can never succeed is kept, a transient fault propagates."""
        if isinstance(parsed, Unusable):
            await self.keep(record, parsed)
            return
        began = time.perf_counter()
        try:
            await handler(parsed)
        except Unusable as exc:
            await self.keep(record, exc)
            return
        except PERMANENT as exc:
            # The same input makes the same output, which no retry can send or store.
            what = "too large for the broker" if isinstance(exc, MessageSizeTooLargeError) else "refused"
            reason = f"what this message makes is {what} ({type(exc).__name__}: {str(exc)[:300]}); kept here"
            await self.keep(record, self.unusable(record, reason))
            return
        self.meter.handling.observe(time.perf_counter() - began)
        self.meter.handled.inc()

    async def keep(self, record: Record, unusable: Unusable) -> None:
        """Keep an unusable message in the DLQ, and say so on the status topic when the VIN is known."""
        await self.emitter.dead_letter(record, unusable.reason)
        self.meter.dead_lettered.inc()
        if unusable.state is not None and unusable.vin:
            await self.emitter.status(
                vin=unusable.vin,
                revision=unusable.revision,
                state=unusable.state,
                build=unusable.build,
                reason=unusable.reason,
            )

    async def transient(self, work: Awaitable[T]) -> T:
        """Await ``work``; on a fault wait out the back-off, then let the fault propagate (redelivery)."""
        try:
            done = await work
        except Exception:
            await self.backoff.failed()
            raise
        self.backoff.succeeded()
        return done
