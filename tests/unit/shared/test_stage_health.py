"""/healthz tells the truth: a subscription stuck failing, or in one batch too long, makes it 503."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from shared.settings import ServiceSettings
from shared.stage import Flow, Stage

pytestmark = pytest.mark.unit


def test_a_flow_is_stuck_when_failing_or_busy_longer_than_the_limit() -> None:
    now = time.monotonic()
    assert Flow("t").stuck(now, 60) is None
    assert Flow("t", failing_since=now - 30).stuck(now, 60) is None
    assert (Flow("t", failing_since=now - 90).stuck(now, 60) or "").startswith("t: failing for 90 s")
    assert (Flow("t", busy_since=now - 61).stuck(now, 60) or "").startswith("t: one batch running for 61 s")


def test_a_batch_that_raises_starts_failing_and_one_that_succeeds_clears_it() -> None:
    flow = Flow("t")
    with pytest.raises(ConnectionError), flow.batch():
        assert flow.busy_since is not None
        raise ConnectionError
    first = flow.failing_since
    assert first is not None and flow.busy_since is None
    with pytest.raises(ConnectionError), flow.batch():
        raise ConnectionError
    assert flow.failing_since == first  # since the first failure, not the last
    with flow.batch():
        pass
    assert flow.failing_since is None


def test_healthz_answers_503_naming_the_stuck_subscription() -> None:
    stage = Stage("test", ServiceSettings(stall_after_s=5))
    stage.health_checks.clear()  # no broker here: only the flows are judged
    flow = Flow("coc.rendered.v1", failing_since=time.monotonic() - 60)
    stage.flows.append(flow)
    client = TestClient(stage.asgi())
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["stuck"][0].startswith("coc.rendered.v1: failing for")
    flow.failing_since = None
    assert client.get("/healthz").status_code == 200


async def test_healthz_answers_503_within_3_s_when_checks_never_return() -> None:
    stage = Stage("test", ServiceSettings())

    async def hangs() -> bool:
        await asyncio.Event().wait()  # a database whose process is stopped: no answer, no error
        return True

    stage.health_checks[:] = [hangs, hangs]
    transport = httpx.ASGITransport(app=stage.asgi())
    async with httpx.AsyncClient(transport=transport, base_url="http://stage") as client:
        started = time.monotonic()
        answer = await asyncio.wait_for(client.get("/healthz"), timeout=10)
    assert answer.status_code == 503 and answer.json()["healthy"] is False
    assert time.monotonic() - started < 3  # both checks bounded together, not one after the other
