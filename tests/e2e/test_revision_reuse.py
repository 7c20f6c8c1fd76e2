"""A correction sent under a revision already archived, on a private stack: refused in view, never sealed.

An MES that forgot to raise the revision sends the same VIN and revision with
another actual mass. Validation refuses it with REVISION_REUSED, which lands on
production's worklist; no stage renders, seals or archives it; the certificate
kept is the first one. The first build sent again is a quiet duplicate.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from devkit.watch import STATUS_GROUP, describe, until_consumed
from shared import topics
from shared.auth import Role
from shared.contracts.events import Document, State, StatusEvent
from tests.conftest import eventually
from tests.e2e.helpers import PrivateStack, sample_run

pytestmark = pytest.mark.e2e

TIMEOUT = 120
REUSED = "REVISION_REUSED"


async def production_worklist(pipeline: PrivateStack) -> list[dict[str, Any]]:
    response = await pipeline.web.get(
        f"{pipeline.url('status')}/v1/worklist",
        params={"owner": "production", "code": REUSED, "size": 200},
        headers=pipeline.auth(Role.VIEWER),
    )
    if response.status_code == 503:  # the view is being read after a start
        return []
    assert response.status_code == 200, f"GET /v1/worklist: {response.status_code} {response.text}"
    return list(response.json()["items"])


def of_stage(events: list[StatusEvent], stage: str, state: State) -> int:
    return sum(1 for e in events if e.revision == 1 and e.stage == stage and e.state is state)


async def test_a_correction_under_an_archived_revision_is_refused_on_productions_worklist_and_never_sealed(
    pipeline: PrivateStack,
) -> None:
    run = sample_run(1, seed=2701, tag="U", defect_share=0.0)
    response = await pipeline.post_approvals(run.approvals)
    assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
    # No release time: intake fills in when it received each send, and the resend must still be the same.
    first = run.builds[0].model_copy(update={"released_at": None})
    vin, mass = first.vin, (first.actual_mass_kg or 0) + 37  # the correction: another actual mass
    records = await pipeline.publish_and_settle([first], TIMEOUT)
    assert records[vin]["state"] == "archived", describe(records[vin])
    kept = await pipeline.certificate(vin, 1)
    assert kept.status_code == 200

    async with pipeline.watch({vin: 1}) as watch:
        events = watch.seen[vin].events
        await pipeline.publish([first.model_copy(update={"actual_mass_kg": mass})])
        await watch.wait(
            lambda _w: any(REUSED in [f.code for f in e.findings] for e in events), TIMEOUT, "refused"
        )
        refusal = next(e for e in events if e.findings)
        assert (refusal.stage, refusal.state, refusal.revision) == ("validation", State.BLOCKED, 1)
        assert [(f.code, f.owner.value, f.severity.value) for f in refusal.findings] == [
            (REUSED, "production", "error")
        ]
        assert "revision 2" in refusal.findings[0].message

        async def listed_now() -> dict[str, Any] | None:
            return next((item for item in await production_worklist(pipeline) if item["vin"] == vin), None)

        listed: dict[str, Any] = await eventually(listed_now, within_s=TIMEOUT, what=f"{vin} on the worklist")
        assert listed["state"] == "blocked" and listed["revision"] == 1
        record = await pipeline.record(vin)
        assert record is not None and record["state"] == "blocked", describe(record)
        history = [(e["revision"], e["stage"], e["state"]) for e in record["timeline"]]
        assert history[-2:] == [(1, "archive", "archived"), (1, "validation", "blocked")], history
        assert "revision 2" in (record["timeline"][-1]["reason"] or "")

        # The first build again, with another time of receipt: decided again on the kept build and
        # carried to the kept certificate; if the refused one had been sent on, its render would
        # come first on the VIN's partition.
        await pipeline.publish([first])
        await watch.wait(
            lambda _w: of_stage(events, "archive", State.ARCHIVED) >= 1, TIMEOUT, "the resend archived"
        )
        assert of_stage(events, "render", State.RENDERED) == 1, [(e.stage, e.state) for e in events]
        assert of_stage(events, "archive", State.FAILED) == 0
        assert [e for e in events if e.findings] == [refusal], "the resend raised a finding"

    # The status service has folded all of it: the resend left the record as the refusal left it.
    await until_consumed(pipeline.bootstrap, time.monotonic() + TIMEOUT, only=(STATUS_GROUP,))

    assert pipeline.archive_rows([vin]) == [{"vin": vin, "revision": 1}]
    again = await pipeline.certificate(vin, 1)
    assert again.content == kept.content and again.headers["X-Coc-Sha256"] == kept.headers["X-Coc-Sha256"]
    assert f"<ActualMass>{first.actual_mass_kg}<".encode() in again.content
    after = await pipeline.record(vin)
    assert after is not None and after["timeline"] == record["timeline"], "the resend is not quiet"
    assert [f["code"] for f in after["findings"]] == [REUSED]


async def test_the_archive_sends_other_bytes_for_an_archived_record_id_to_the_dlq_and_never_says_archived(
    pipeline: PrivateStack,
) -> None:
    run = sample_run(1, seed=2702, tag="U", defect_share=0.0)
    response = await pipeline.post_approvals(run.approvals)
    assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
    build = run.builds[0]
    vin = build.vin
    records = await pipeline.publish_and_settle([build], TIMEOUT)
    assert records[vin]["state"] == "archived", describe(records[vin])
    kept = await pipeline.certificate(vin, 1)
    assert kept.status_code == 200
    # The kept certificate with another actual mass under its old seal, as if sealed by signing.
    mass = f"<ActualMass>{build.actual_mass_kg}<".encode()
    assert mass in kept.content
    other = kept.content.replace(mass, f"<ActualMass>{(build.actual_mass_kg or 0) + 37}<".encode())
    document = Document(
        record_id=f"{vin}:1",
        vin=vin,
        revision=1,
        version_number=int(kept.headers["X-Coc-Version-Number"]),
        xml=other.decode(),
        sha256=hashlib.sha256(other).hexdigest(),
        signer_fingerprint=kept.headers["X-Coc-Signer-Fingerprint"],
    )
    value = document.model_dump_json().encode()

    async with pipeline.watch({vin: 1}) as watch:
        events = watch.seen[vin].events
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topics.SIGNED, value, key=vin.encode())
        finally:
            await producer.stop()
        (letter,) = await pipeline.dead_letters(topics.SIGNED, {vin: 1}, TIMEOUT)
        await watch.wait(lambda _w: of_stage(events, "archive", State.FAILED) == 1, TIMEOUT, "failed")

    assert letter.value_sha256 == hashlib.sha256(value).hexdigest()  # the DLQ keeps the message
    assert f"archived already as SHA-256 {kept.headers['X-Coc-Sha256']}" in letter.reason
    assert document.sha256 in letter.reason
    failed = next(e for e in events if e.state is State.FAILED)
    assert failed.reason == letter.reason
    assert of_stage(events, "archive", State.ARCHIVED) == 0, [(e.stage, e.state) for e in events]
    assert pipeline.archive_rows([vin]) == [{"vin": vin, "revision": 1}]
    again = await pipeline.certificate(vin, 1)
    assert again.content == kept.content and again.headers["X-Coc-Sha256"] == kept.headers["X-Coc-Sha256"]
