"""Metrics and alerts on a private stack: every service's /metrics after a small run, and Prometheus's
service-down alert after a service is stopped.

The stack runs on ports of its own (Kafka 23092/23093, FerretDB 23017, services
23081-23088, Prometheus 23090, below the kernel's ephemeral range). ``coc stack up
--monitoring`` adds Prometheus, scraping every second, with the shipped alert rules
except one value: CocServiceDown's ``for`` is 5 s instead of a minute, so the test
sees it fire within its ``for`` without waiting a minute (the rule itself, expression
and labels, is the one ``promtool test rules`` checks in the unit tests).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.local.monitoring import RULES, monitoring_url
from devkit.mes import Message
from shared import topics
from tests.conftest import eventually
from tests.e2e.helpers import PrivateStack, own_stack, sample_run, say, show

pytestmark = pytest.mark.e2e

BUILDS, MALFORMED = 20, 3
DOWN_FOR_S = 5
OWN_PORTS = {
    "COC_KAFKA_BOOTSTRAP": "127.0.0.1:23092",
    "COC_KAFKA_CONTROLLER_PORT": "23093",
    "COC_MONGO_URL": "mongodb://127.0.0.1:23017",
    "COC_PORT_BASE": "23080",
    "COC_MONITORING_PORT": "23090",
    "COC_MONITORING_SCRAPE_S": "1",
}
# Each stage and the topic whose every clean build it handles once.
ONE_PER_BUILD = {
    "validation": topics.ACCEPTED,
    "render": topics.VALIDATED,
    "signing": topics.RENDERED,
    "archive": topics.SIGNED,
    "delivery": topics.ARCHIVED,
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def short_service_down(folder: Path) -> Path:
    """The shipped rules with CocServiceDown's ``for`` shortened; nothing else changed."""
    text = RULES.read_text()
    shortened, count = re.subn(
        r"(- alert: CocServiceDown\n(?:(?!- alert:).*\n)*?\s+for: )1m\n", rf"\g<1>{DOWN_FOR_S}s\n", text
    )
    assert count == 1, "CocServiceDown's `for: 1m` not found in the shipped rules"
    path = folder / "alerts.yml"
    path.write_text(shortened)
    return path


@pytest.fixture(scope="module")
def watched_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateStack]:
    """A private stack, then ``coc stack up --monitoring`` on it; ``coc stack down`` stops Prometheus too."""
    rules = short_service_down(tmp_path_factory.mktemp("rules"))
    with own_stack(request, "monitoring", {**OWN_PORTS, "COC_MONITORING_RULES": str(rules)}) as stack:
        began = time.monotonic()
        result = stack.coc("stack", "up", "--monitoring")
        assert result.returncode == 0, f"coc stack up --monitoring:\n{result.stdout}{result.stderr}"
        say(f"prometheus up in {time.monotonic() - began:.1f}s")
        yield stack


def scrape(stack: PrivateStack, service: str) -> tuple[str, Samples]:
    text = httpx.get(f"{stack.url(service)}/metrics", timeout=10).text
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture(scope="module")
async def small_run(watched_stack: PrivateStack) -> AsyncIterator[tuple[PrivateStack, list[str]]]:
    """20 clean builds archived, and 3 messages no contract allows sent to coc.builds.v1 (dead-lettered)."""
    async with watched_stack.client() as stack:
        run = sample_run(BUILDS, seed=3101, tag="M", defect_share=0.0)
        response = await stack.post_approvals(run.approvals)
        assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
        records = await stack.publish_and_settle(run.builds, 240)
        states = {vin: r["state"] for vin, r in records.items()}
        assert set(states.values()) == {"archived"}, show([f"{v}: {s}" for v, s in states.items()])
        keys = [f"MALFORMED-METRICS-{n}" for n in range(MALFORMED)]
        await stack.publish_raw([Message(b"{not json at all", key.encode()) for key in keys])
        await stack.dead_letters(topics.BUILDS, dict.fromkeys(keys, 1))
        yield stack, run.vins


async def test_every_service_serves_the_counts_the_run_implies_and_no_vin(
    small_run: tuple[PrivateStack, list[str]],
) -> None:
    stack, vins = small_run

    def intake_counted() -> Samples | None:
        _, samples = scrape(stack, "intake")
        dead = value(samples, "coc_messages_dead_lettered_total", stage="intake", topic=topics.BUILDS)
        return samples if dead == MALFORMED else None

    intake = await eventually(intake_counted, within_s=30, what="intake's dead letters counted")
    assert value(intake, "coc_messages_handled_total", stage="intake", topic=topics.BUILDS) == BUILDS
    assert value(intake, "coc_http_requests_total", method="POST", route="/v1/approvals", status="202") == 1
    for service, topic in ONE_PER_BUILD.items():
        _, samples = scrape(stack, service)
        assert value(samples, "coc_messages_handled_total", stage=service, topic=topic) == BUILDS, service
        assert value(samples, "coc_messages_dead_lettered_total", stage=service, topic=topic) == 0, service
        assert value(samples, "coc_message_handling_seconds_count", stage=service, topic=topic) == BUILDS
    _, signing = scrape(stack, "signing")
    seals = [v for (name, _), v in signing.items() if name == "coc_seal_expiry_days"]
    assert len(seals) == 1 and seals[0] > 30  # the development seal, valid for years

    def read_model_current() -> Samples | None:
        _, samples = scrape(stack, "status")
        return samples if value(samples, "coc_read_model_lag_messages") == 0 else None

    status = await eventually(read_model_current, within_s=30, what="the read model current")
    folded = value(status, "coc_messages_handled_total", stage="status", topic=topics.STATUS) or 0
    assert folded >= 5 * BUILDS  # received, validated, rendered, signed, archived: at least
    assert value(status, "coc_kafka_under_replicated_partitions", topic=topics.BUILDS) == 0  # one broker
    assert (value(status, "coc_kafka_replication_checked_timestamp_seconds") or 0) > time.time() - 120
    for service, topic in ONE_PER_BUILD.items():

        def caught_up(service: str = service, topic: str = topic) -> list[float] | None:
            _, samples = scrape(stack, service)
            lags = [v for (name, labels), v in samples.items() if name == "coc_consumer_lag_messages"
                    and ("topic", topic) in labels]  # fmt: skip
            return lags if lags and not any(lags) else None

        await eventually(caught_up, within_s=30, what=f"{service}'s lag on {topic} at 0 at rest")
    for service in (
        "intake",
        "validation",
        "render",
        "signing",
        "archive",
        "status",
        "delivery",
        "workspace",
    ):
        text, samples = scrape(stack, service)
        assert value(samples, "process_cpu_seconds_total") is not None, service
        assert not [vin for vin in vins if vin in text], f"{service}: a VIN in /metrics"
        lags = [(labels, v) for (name, labels), v in samples.items() if name == "coc_consumer_lag_messages"]
        assert all(v >= 0 for _, v in lags), service


def prometheus(stack: PrivateStack, path: str, **params: str) -> Any:
    answer = httpx.get(f"{monitoring_url(stack.settings)}{path}", params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


async def test_prometheus_scrapes_every_service_and_fires_service_down_within_its_for_after_a_stop(
    small_run: tuple[PrivateStack, list[str]],
) -> None:
    stack, _ = small_run

    def all_up() -> list[Any] | None:
        found = prometheus(stack, "/api/v1/query", query='up{job="coc"}')["result"]
        return found if len(found) == 8 and all(r["value"][1] == "1" for r in found) else None

    targets = await eventually(all_up, within_s=30, what="Prometheus seeing all eight services up")
    assert {r["metric"]["service"] for r in targets} == {
        "intake", "validation", "render", "signing", "delivery", "archive", "status", "workspace",
    }  # fmt: skip
    stack.kill("render")
    stopped = time.monotonic()

    def down_alert() -> dict[str, Any] | None:
        alerts = prometheus(stack, "/api/v1/alerts")["alerts"]
        found = [a for a in alerts if a["labels"]["alertname"] == "CocServiceDown"]
        return next((a for a in found if a["state"] == "firing"), None)

    # Firing once the scrapes have failed for `for` (5 s): a scrape and an evaluation (1 s each) late at most,
    # with the slack a loaded machine needs; never before `for` has passed.
    firing = await eventually(down_alert, within_s=DOWN_FOR_S + 10, every_s=0.2, what="CocServiceDown firing")
    after = time.monotonic() - stopped
    say(f"CocServiceDown fired {after:.1f}s after render was stopped (for: {DOWN_FOR_S}s)")
    assert firing["labels"]["service"] == "render" and firing["labels"]["severity"] == "critical"
    assert after >= DOWN_FOR_S
