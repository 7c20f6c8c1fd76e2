"""Delivery's /metrics: each announced state counted per destination, and the retries."""

from __future__ import annotations

import pytest

from services.delivery.deliver import Step
from services.delivery.settings import DeliverySettings
from services.delivery.subscribers import Sender
from shared.stage import Stage
from tests.unit.delivery.test_deliver import queued
from tests.unit.shared.runtime_fakes import Recording

pytestmark = pytest.mark.unit


async def test_each_announced_state_is_counted_per_destination_and_a_retry_also_as_a_retry() -> None:
    stage = Stage("delivery", DeliverySettings())
    stage.emitter.outbound = Recording()
    sender = Sender(stage, ledger=None, connectors={})  # type: ignore[arg-type]
    await sender.announce(queued(step=Step.RETRYING, reason="the authority answered 503"))
    await sender.announce(queued(step=Step.RETRYING, reason="the authority answered 503", attempts=2))
    await sender.announce(queued(destination="vca", step=Step.REJECTED, reason="colour unknown"))
    await sender.announce(queued(destination="vca", step=Step.DELIVERED))

    def count(name: str, **labels: str) -> float | None:
        return stage.metrics.registry.get_sample_value(name, labels)

    assert count("coc_deliveries_total", destination="nap-lt", state="retrying") == 2
    assert count("coc_delivery_retries_total", destination="nap-lt") == 2
    assert count("coc_deliveries_total", destination="vca", state="rejected") == 1
    assert count("coc_deliveries_total", destination="vca", state="delivered") == 1
    assert count("coc_delivery_retries_total", destination="vca") is None
