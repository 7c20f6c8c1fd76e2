"""Delivery end to end: archived certificates reach the test NAP (mutual TLS) and the test VCA (OAuth2).

The private stack's delivery service is configured (``helpers.delivery_env``)
with two destinations: Lithuania to a NAP, the UK to the VCA; the test servers
(``devkit.authorities``) run here, on those ports, and count what they keep.
Then the release evidence of a reviewed, delivered record, and ``coc audit``
on the whole archive, before and after one certificate is altered and one is
removed from its chain.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile
from collections.abc import Iterable, Iterator
from hashlib import sha256
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from devkit.authorities import Nap, Pki, Vca
from devkit.watch import topic_partitions
from services.archive.stored_xml import packed, xml_of
from shared import topics
from shared.auth import Role
from shared.contracts import BuildRecord
from shared.contracts.approvals import Approval, master_data_sha256
from shared.contracts.events import StatusEvent
from tests.e2e.helpers import (
    NAP_COUNTRY,
    NAP_PORT,
    REVIEW_GROUP,
    VCA_CLIENT,
    VCA_COUNTRY,
    VCA_PORT,
    VCA_SECRET,
    PrivateStack,
    authorities_dir,
    sample_run,
    say,
)

pytestmark = pytest.mark.e2e
SETTLE = 180.0
DELIVERED, REJECTED = "delivered", "delivery_rejected"


@pytest.fixture(scope="module")
def authorities(private_stack: PrivateStack) -> Iterator[tuple[Nap, Vca]]:
    pki = Pki(authorities_dir(private_stack.settings.state_dir))
    with (
        Nap(pki, port=NAP_PORT).running() as nap,
        Vca(VCA_CLIENT, VCA_SECRET, port=VCA_PORT).running() as vca,
    ):
        yield nap, vca  # type: ignore[misc]


def to(country: str, builds: Iterable[BuildRecord]) -> list[BuildRecord]:
    return [b.model_copy(update={"intended_country": country}) for b in builds]


async def deliveries_final(
    stack: PrivateStack, vins: Iterable[str], timeout: float = SETTLE
) -> dict[str, Any]:
    """Each VIN's status record once its delivery is delivered or rejected (bounded wait)."""
    wanted = list(vins)
    deadline = time.monotonic() + timeout
    while True:
        records = await stack.records(wanted)
        states = {vin: ((r or {}).get("delivery") or {}).get("state") for vin, r in records.items()}
        if all(state in (DELIVERED, REJECTED) for state in states.values()):
            return records
        if time.monotonic() > deadline:
            open_ = {vin: state for vin, state in states.items() if state not in (DELIVERED, REJECTED)}
            raise AssertionError(
                f"deliveries not final after {timeout:.0f}s: {dict(list(open_.items())[:10])}"
            )
        await asyncio.sleep(1.0)


async def delivery_events(stack: PrivateStack, vins: set[str]) -> list[StatusEvent]:
    """Every delivery event of these VINs on coc.status.v1, from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    found: list[StatusEvent] = []
    try:
        partitions = [
            TopicPartition(topics.STATUS, p) for p in await topic_partitions(stack.bootstrap, topics.STATUS)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                for record in records:
                    if record.key and record.key.decode() in vins:
                        event = StatusEvent.model_validate_json(record.value or b"")
                        if event.stage == "delivery":
                            found.append(event)
    finally:
        await consumer.stop()
    return found


async def test_certificates_reach_the_nap_and_the_vca_once_faults_are_retried_and_a_rejection_is_owned(
    pipeline: PrivateStack, authorities: tuple[Nap, Vca]
) -> None:
    nap, vca = authorities
    run = sample_run(12, seed=141, tag="X", defect_share=0.0)
    lt, uk = to(NAP_COUNTRY, run.builds[:6]), to(VCA_COUNTRY, run.builds[6:])
    refused = lt[0]
    nap.behaviour.reject[refused.vin] = (
        "VALUE_OUT_OF_RANGE",
        "CocDataGroup/MassGroup/ActualMass",
        "ActualMass above the approved maximum",
    )
    nap.behaviour.fail_next = ["drop", "503"]  # the first two uploads fail: each is retried
    first, later = [*lt, *uk[:3]], uk[3:]
    records = await pipeline.publish_and_settle(first, SETTLE)
    await deliveries_final(pipeline, [b.vin for b in first])
    tokens_before, refused_before = vca.tokens_issued, vca.refused_tokens
    vca.expire_tokens()  # the sender's cached token is refused from now on: it must get a new one
    records |= await pipeline.publish_and_settle(later, SETTLE)
    assert {vin: r["state"] for vin, r in records.items()} == {b.vin: "archived" for b in (*lt, *uk)}
    final = await deliveries_final(pipeline, [b.vin for b in (*lt, *uk)])

    for build in [*lt[1:], *uk]:
        delivery = final[build.vin]["delivery"]
        assert delivery["state"] == DELIVERED, f"{build.vin}: {delivery}"
    kept_nap, kept_vca = nap.ledger.per_certificate(), vca.ledger.per_certificate()
    assert {vin for vin, _n in kept_nap} >= {b.vin for b in lt[1:]}
    assert {vin for vin, _n in kept_vca} >= {b.vin for b in uk}
    ours = {b.vin for b in (*lt, *uk)}
    assert all(n == 1 for (vin, _v), n in (kept_nap + kept_vca).items() if vin in ours), "kept twice"
    assert nap.ledger.requests >= len(lt) + 2, "the dropped and the 503 upload were sent again"
    assert vca.refused_tokens > refused_before and vca.tokens_issued > tokens_before, "expired token renewed"

    rejected = final[refused.vin]["delivery"]
    assert rejected["state"] == REJECTED and rejected["owner"] == "production"
    assert "ActualMass above the approved maximum" in rejected["reason"]
    assert final[refused.vin]["state"] == "archived", "the certificate stays issued; its delivery is refused"
    events = await delivery_events(pipeline, ours)
    on_topic = [e for e in events if e.vin == refused.vin and e.state.value == REJECTED]
    assert on_topic and on_topic[-1].owner is not None and on_topic[-1].owner.value == "production"
    assert on_topic[-1].destination == "nap-lt" and "ActualMass" in (on_topic[-1].reason or "")
    assert on_topic[-1].findings and on_topic[-1].findings[0].path == "CocDataGroup/MassGroup/ActualMass"
    retried = [e for e in events if e.state.value == "delivery_retrying"]
    assert retried, "the dropped connection and the 503 show as retrying on the status topic"


async def test_a_reviewed_and_delivered_record_has_its_whole_evidence_and_the_audit_finds_what_was_touched(
    pipeline: PrivateStack, authorities: tuple[Nap, Vca]
) -> None:
    _nap, _vca = authorities
    run = sample_run(3, seed=142, tag="Y", defect_share=0.0)
    reviewed, corrected, plain = to(VCA_COUNTRY, run.builds)
    reviewed = reviewed.model_copy(update={"vehicle_group": REVIEW_GROUP})
    async with pipeline.watch({reviewed.vin: 1}) as watch:
        await pipeline.publish([reviewed])
        await pipeline.settle(watch, {reviewed.vin: 1}, SETTLE)
    response = await pipeline.post_review(reviewed.vin, 1, "accept", "e2e reviewer")
    assert response.status_code == 202, response.text
    second = corrected.model_copy(update={"revision": 2, "build_id": corrected.build_id + "-2"})
    await pipeline.publish_and_settle([corrected, plain], SETTLE)
    await pipeline.publish_and_settle([second], SETTLE)
    await deliveries_final(pipeline, [reviewed.vin, corrected.vin, plain.vin])

    assert pipeline.http is not None
    answer = await pipeline.http.get(
        f"{pipeline.url('archive')}/v1/evidence/{reviewed.vin}", headers=pipeline.auth(Role.VIEWER)
    )
    assert answer.status_code == 200, answer.text
    files = unzip(answer.content)
    manifest = json.loads(files["manifest.json"])
    for name, digest in manifest["files"].items():
        assert sha256(files[name]).hexdigest() == digest, f"{name} differs from the manifest"
    certificate = await pipeline.certificate(reviewed.vin)
    assert (
        files["certificate.xml"] == certificate.content
        and manifest["sha256"] == sha256(certificate.content).hexdigest()
    )
    assert json.loads(files["build.json"])["vin"] == reviewed.vin
    approval = Approval.model_validate(json.loads(files["approval.json"]))
    assert (
        master_data_sha256(approval) == manifest["approval_sha256"] and approval.key == reviewed.approval.key
    )
    release = json.loads(files["release.json"])
    assert release["policy"] == "review" and release["settled_by"]["reviewer"] == "e2e reviewer"
    assert [f["code"] for f in release["findings"]] == ["GROUP_REVIEW"]
    assert files["signer.pem"].startswith(b"-----BEGIN CERTIFICATE-----")
    chain = json.loads(files["chain.json"])
    assert chain["position"] == 0 and chain["links"][0]["sha256"] == manifest["sha256"]
    deliveries = json.loads(files["deliveries.json"])["deliveries"]
    assert [d["step"] for d in deliveries] == ["delivered"] and deliveries[0]["destination"] == "vca"
    assert any(r["answer"] == "accepted" for r in deliveries[0]["receipts"])
    assert manifest["trace_id"] and len(manifest["trace_id"]) == 32

    out = pipeline.settings.state_dir / "evidence-out"
    cli = pipeline.coc("evidence", reviewed.vin, "--out", str(out))
    assert cli.returncode == 0, cli.stderr
    assert (out / f"evidence-{reviewed.vin}.zip").read_bytes() == answer.content

    clean = pipeline.coc("audit", "--json", timeout=600)
    assert clean.returncode == 0, (
        f"audit of an untouched archive: {clean.stdout[-3000:]}{clean.stderr[-2000:]}"
    )
    summary = json.loads(clean.stdout)
    assert summary["certificates"] >= 4 and summary["breaks"] == []
    say(
        f"coc audit: {summary['certificates']} certificates in {summary['seconds']} s ({summary['per_second']}/s)"
    )

    altered_vin = plain.vin
    with pipeline.mongo() as db:
        row = db["archive_certificates"].find_one({"_id": f"{altered_vin}:1"})
        xml = xml_of(row)
        flipped = (
            xml.replace(b"<ActualMass>", b"<ActualMass>1", 1)
            if b"<ActualMass>" in xml
            else xml[:-10] + b"X" + xml[-9:]
        )
        db["archive_certificates"].update_one({"_id": f"{altered_vin}:1"}, {"$set": packed(flipped)})
        db["archive_certificates"].delete_one({"_id": f"{corrected.vin}:1"})
    broken = pipeline.coc("audit", "--json", timeout=600)
    assert broken.returncode == 1, broken.stdout[-2000:] + broken.stderr[-2000:]
    named = {b["vin"] for b in json.loads(broken.stdout)["breaks"]}
    assert named == {altered_vin, corrected.vin}, f"breaks name {named}"
    text = pipeline.coc("audit", timeout=600)
    assert f"BROKEN {altered_vin} {altered_vin}:1" in text.stdout and corrected.vin in text.stdout


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        return {name.split("/", 1)[1]: bundle.read(name) for name in bundle.namelist()}


async def test_delivery_killed_mid_run_and_restarted_delivers_each_of_500_certificates_exactly_once(
    pipeline: PrivateStack, authorities: tuple[Nap, Vca]
) -> None:
    nap, _vca = authorities
    run = sample_run(500, seed=143, tag="Z", defect_share=0.0)
    builds = to(NAP_COUNTRY, run.builds)
    vins = {b.vin for b in builds}
    nap.behaviour.delay_s = 0.05  # the NAP takes its time, so the kill falls mid-run

    def kept() -> int:
        return sum(1 for s in nap.ledger.stored.values() if s["vin"] in vins)

    expected = {b.vin: b.revision for b in builds}
    async with pipeline.watch(expected) as watch:
        await pipeline.publish(builds)
        deadline = time.monotonic() + SETTLE
        while kept() < 100:
            assert time.monotonic() < deadline, f"only {kept()} delivered before the kill"
            await asyncio.sleep(0.2)
        pipeline.kill("delivery")
        say(f"delivery killed with {kept()} of 500 kept at the NAP")
        pipeline.up()
        await pipeline.settle(watch, expected, SETTLE)
    nap.behaviour.delay_s = 0.0
    final = await deliveries_final(pipeline, vins, timeout=SETTLE)
    assert all(r["delivery"]["state"] == DELIVERED for r in final.values())
    counts = {vin: n for (vin, _version), n in nap.ledger.per_certificate().items() if vin in vins}
    assert len(counts) == 500 and set(counts.values()) == {1}, "each certificate kept exactly once"
    uploads = sum(n for ref, n in nap.ledger.uploads.items() if nap.ledger.stored[ref]["vin"] in vins)
    say(f"500 certificates kept once each; {uploads - 500} uploads were resends answered as duplicates")
