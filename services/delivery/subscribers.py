"""Delivery's subscriber and sender: archived certificates in, delivered to their authority, states out.

The subscriber takes each archive receipt into the ledger (routed by the
certificate's IntendedCountryRegistration) and commits: a slow or absent
authority never holds a partition. The sender works the ledger's pending
deliveries, at most ``delivery_concurrency`` at once: claim, call, record the
reply, announce the new state on the status topic. Every step is written
before the next starts, so a process killed at any moment leaves work the next
one finishes (``services.delivery.deliver`` on what a send in doubt becomes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from services.delivery.adapters.connectors import Archive, Connector
from services.delivery.adapters.ledger import Ledger
from services.delivery.deliver import (
    Delivery,
    Step,
    Timing,
    after,
    corrected,
    delivery_id,
    header_of,
    no_route,
    route,
)
from services.delivery.settings import DeliverySettings
from shared import topics
from shared.contracts.events import ArchiveReceipt, now
from shared.stage import Stage, Unusable
from shared.xml import XmlInputError

log = logging.getLogger(__name__)


class Sender:
    """Works the pending deliveries: due ones are sent (or polled), a few at a time."""

    def __init__(
        self,
        stage: Stage[DeliverySettings],
        ledger: Ledger,
        connectors: dict[str, Connector],
    ) -> None:
        settings = stage.settings
        self.stage, self.ledger, self.connectors = stage, ledger, connectors
        self.timing = Timing(
            settings.delivery_retry_initial_s, settings.delivery_retry_max_s, settings.delivery_poll_s
        )
        self.in_flight: set[str] = set()
        self.slots = asyncio.Semaphore(settings.delivery_concurrency)
        self.wake = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        settings = self.stage.settings
        while True:
            try:
                due = await self.ledger.due(now(), limit=settings.delivery_concurrency * 4)
            except Exception:  # the database away: look again at the next turn
                log.warning("cannot read the pending deliveries; trying again", exc_info=True)
                due = []
            for one in due:
                if one in self.in_flight:
                    continue
                self.in_flight.add(one)
                task = asyncio.create_task(self._one(one))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), settings.delivery_scan_s)

    async def _one(self, one: str) -> None:
        try:
            async with self.slots:
                await self.deliver(one)
        except Exception:  # a database or broker fault: the pending entry stays, and is due again
            log.warning("delivery %s interrupted; it is tried again", one, exc_info=True)
        finally:
            self.in_flight.discard(one)

    async def deliver(self, one: str) -> None:
        delivery = await self.ledger.get(one)
        if delivery is None:
            await self.ledger.forget_pending(one)
            return
        if delivery.final:
            # Decided, but the sender stopped before it announced that: announce it now.
            await self.announce(delivery)
            await self.ledger.forget_pending(one)
            return
        connector = self.connectors.get(delivery.destination)
        if connector is None:
            # Its destination was taken out of the settings: look again after a lease, not every scan.
            log.warning(
                "delivery %s names destination %s, which is not configured", one, delivery.destination
            )
            await self.ledger.postpone(one, now(), self.stage.settings.delivery_lease_s)
            return
        claimed = await self.ledger.claim(delivery, now(), self.stage.settings.delivery_lease_s)
        if claimed is None:
            return  # another sender has it
        if claimed.step is Step.SUBMITTED:
            reply = await connector.poll(claimed)
        else:
            document = await self.ledger.document(one)
            if document is None:
                return
            reply = await connector.send(claimed, document)
        decided = after(claimed, reply, now(), self.timing)
        if not await self.ledger.save(decided):
            log.warning("delivery %s was claimed by another sender meanwhile; its answer stands", one)
            return
        if (
            decided.step is not delivery.step
            or decided.step is Step.RETRYING
            or decided.reason != delivery.reason
        ):
            await self.announce(decided)
        if decided.final:
            await self.ledger.forget_pending(one)

    async def announce(self, delivery: Delivery) -> None:
        """Say the delivery's state on the status topic, and count it for /metrics (per destination)."""
        finding = delivery.finding()
        await self.stage.emitter.status(
            vin=delivery.vin,
            revision=delivery.revision,
            state=delivery.state,
            findings=(finding,) if finding else (),
            reason=delivery.reason,
            owner=delivery.owner,
            destination=delivery.destination,
        )
        metrics = self.stage.metrics
        metrics.deliveries.labels(delivery.destination, delivery.step.value).inc()
        if delivery.step is Step.RETRYING:
            metrics.delivery_retries.labels(delivery.destination).inc()

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def register(stage: Stage[DeliverySettings], ledger: Ledger, archive: Archive, sender: Sender) -> None:
    settings = stage.settings
    routes = {name: d.countries for name, d in settings.delivery_destinations.items()}

    async def on_archived(receipt: ArchiveReceipt) -> None:
        if not routes or await ledger.known(receipt.vin, receipt.record_id):
            return  # delivery not configured, or this receipt was taken in already
        signed = await archive.certificate(receipt.vin, receipt.revision)
        try:
            header = header_of(signed)
        except XmlInputError as exc:
            raise Unusable(
                f"archived certificate {receipt.record_id} unreadable: {exc}", state=None
            ) from None
        destination = route(header.country, routes)
        original = (
            corrected(header.version_number, await ledger.of_vin(receipt.vin))
            if header.version_number > 1
            else None
        )
        if original is not None and original.destination in routes:
            destination = original.destination  # a correction goes where the original went
        delivery = Delivery(
            id=delivery_id(receipt.vin, header.version_number, destination or "-"),
            vin=receipt.vin,
            revision=receipt.revision,
            record_id=receipt.record_id,
            version_number=header.version_number,
            reference_id=header.reference_id,
            sha256=receipt.sha256,
            destination=destination or "-",
            step=Step.QUEUED,
            next_at=now(),
            corrects=original.reference_id if original is not None else None,
        )
        if destination is None:
            delivery = no_route(delivery, header.country)
            if settings.delivery_unrouted == "ignore":
                delivery = replace(delivery, owner=None)
        stored = await ledger.record(delivery)
        ignored = stored.step is Step.UNROUTED and settings.delivery_unrouted == "ignore"
        if stored is delivery and not ignored:
            # Announced before the sender can see it: its later states come after this one.
            await sender.announce(stored)
        await ledger.schedule(stored, signed)
        sender.wake.set()

    stage.consume(topics.ARCHIVED, ArchiveReceipt, on_archived, broken_state=None)
