"""/metrics of a stage: what the runtime counts per topic, the lag per partition, HTTP by route template."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from shared.contracts import Finding, Owner, Severity
from shared.observability.metrics import StageMetrics, seal_readings
from shared.observability.replication import OTHER, under_replicated
from shared.runtime.consumer import ConsumerLoop, Subscription
from shared.settings import CocSettings, ServiceSettings
from shared.stage import Stage
from tests.unit.shared.runtime_fakes import Recording, record
from tests.unit.shared.test_consumer_loop import P0, P1, Consumer, Kept, at

pytestmark = pytest.mark.unit

TOPIC = "test.metrics.in"
VIN = "WVWZZZ1JZXW000001"
FINDING = Finding(code="T", path="p", message="m", severity=Severity.ERROR, owner=Owner.PRODUCTION)


def value(metrics: StageMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_a_stage_counts_messages_handled_and_dead_lettered_per_topic_and_times_each_handled_one() -> (
    None
):
    stage = Stage("test", ServiceSettings(retry_initial_s=0.0, retry_max_s=0.0))
    stage.emitter.outbound = Recording()

    async def handle(finding: Finding) -> None:
        return None

    stage.consume(TOPIC, Finding, handle, broken_state=None)
    (loop,) = stage.loops
    good = FINDING.model_dump_json().encode()
    batch = [record(TOPIC, good, key=b"A"), record(TOPIC, b"{not json", key=b"B", offset=1)]
    await loop.mode.handle([*batch, record(TOPIC, good, key=b"C", offset=2)], loop)
    labels = {"stage": "test", "topic": TOPIC}
    assert value(stage.metrics, "coc_messages_handled_total", **labels) == 2
    assert value(stage.metrics, "coc_messages_dead_lettered_total", **labels) == 1
    assert value(stage.metrics, "coc_message_handling_seconds_count", **labels) == 2
    assert value(stage.metrics, "coc_messages_failed_total", **labels) == 0


async def test_a_batch_whose_mode_fails_counts_its_messages_as_failed_and_is_timed() -> None:
    metrics = StageMetrics("test", process=False)
    consumer = Consumer([{P0: at(P0, 4, 5), P1: at(P1, 9)}])
    loop = ConsumerLoop(
        CocSettings(),
        Subscription("t", group_id="g"),
        Kept(failing=True),
        client_id="c",
        meter=metrics.topic("t"),
    )
    loop.consumer = consumer  # type: ignore[assignment]
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    assert value(metrics, "coc_messages_failed_total", stage="test", topic="t") == 3
    assert value(metrics, "coc_batch_handling_seconds_count", stage="test", topic="t") == 1


async def test_the_lag_of_a_partition_is_its_high_watermark_past_the_last_commit_and_an_unread_one_has_none() -> (
    None
):
    metrics = StageMetrics("test", process=False)
    consumer = Consumer([{P0: at(P0, 4, 5)}])
    consumer.ends = {P0: 10, P1: 3}  # P1 never read by this process: its lag is not known
    loop = ConsumerLoop(CocSettings(), Subscription("t", group_id="g"), Kept(), client_id="c")
    loop.consumer = consumer  # type: ignore[assignment]
    metrics.consumer_lag("t", loop.lags)
    await loop.poll_once(consumer)  # type: ignore[arg-type]
    assert value(metrics, "coc_consumer_lag_messages", stage="test", topic="t", partition="0") == 4
    assert value(metrics, "coc_consumer_lag_messages", stage="test", topic="t", partition="1") is None
    consumer.ends[P0] = 25  # more came: the lag grows until the stage reads and commits it
    assert value(metrics, "coc_consumer_lag_messages", stage="test", topic="t", partition="0") == 19


def test_http_requests_are_counted_by_route_template_and_status_never_by_the_vin_in_the_path() -> None:
    stage = Stage("test", ServiceSettings())
    app = stage.asgi()

    @app.get("/v1/records/{vin}")
    async def one(vin: str) -> dict[str, str]:
        return {"vin": vin}

    client = TestClient(app)
    assert client.get(f"/v1/records/{VIN}").status_code == 200
    assert client.get(f"/nowhere/{VIN}").status_code == 404
    scraped = client.get("/metrics")  # no token, as /healthz
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'coc_http_requests_total{method="GET",route="/v1/records/{vin}",status="200"} 1.0' in text
    assert 'coc_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert VIN not in text
    assert "process_cpu_seconds_total" in text and "python_gc_collections_total" in text


def test_under_replicated_partitions_are_counted_per_pipeline_topic_and_others_together() -> None:
    def part(n: int, replicas: int, isr: int) -> dict[str, object]:
        return {"partition": n, "replicas": list(range(replicas)), "isr": list(range(isr))}

    described = [
        {
            "topic": "coc.builds.v1",
            "error_code": 0,
            "partitions": [part(0, 3, 2), part(1, 3, 3), part(2, 3, 1)],
        },
        {"topic": "coc.status.v1", "error_code": 0, "partitions": [part(0, 3, 3)]},
        {"topic": "a-test-topic-1", "error_code": 0, "partitions": [part(0, 3, 2)]},
        {"topic": "a-test-topic-2", "error_code": 0, "partitions": [part(0, 3, 2)]},
        {"topic": "coc.signed.forbidden", "error_code": 29, "partitions": []},  # not ours to describe
        {"topic": "__consumer_offsets", "error_code": 0, "is_internal": True, "partitions": [part(0, 3, 1)]},
    ]
    assert under_replicated(described) == {"coc.builds.v1": 2, "coc.status.v1": 0, OTHER: 2}


def test_a_seal_is_served_with_its_days_to_expiry_under_its_fingerprints_first_digits() -> None:
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    fingerprint = "AB:CD:" + "EF:" * 30 + "01"
    metrics = StageMetrics("signing", process=False)
    metrics.seal_expiry.add(
        seal_readings(lambda: [(fingerprint, now + dt.timedelta(days=29.5))], lambda: now)
    )
    assert value(metrics, "coc_seal_expiry_days", seal="abcdefefefefefef") == 29.5


def test_a_reading_that_fails_leaves_the_others_served() -> None:
    metrics = StageMetrics("status", process=False)

    def broken() -> list[tuple[tuple[str, ...], float]]:
        raise RuntimeError("not there yet")

    metrics.read_model_lag.add(broken)
    metrics.read_model_lag.add(lambda: [((), 7.0)])
    assert value(metrics, "coc_read_model_lag_messages") == 7.0
