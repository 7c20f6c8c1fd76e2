"""The whole pipeline on a private stack, driven as its users drive it.

Approvals over HTTP as the type-approval team posts them, builds straight to
coc.builds.v1 as a factory MES publishes them, reviews over HTTP; outcomes read
from the status API and the archive, certificates checked by the project's own
verifier and by xmlsec1 and xmllint. Each test has its own VIN tag.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devkit.mes import Message
from devkit.watch import describe
from shared import topics
from shared.auth import Role
from shared.contracts import BuildRecord
from shared.contracts.events import StatusEvent
from tests.e2e.helpers import (
    REVIEW_GROUP,
    CertificateCheck,
    PrivateStack,
    SampleRun,
    clean_twin,
    outcome_problems,
    sample_run,
    say,
    show,
)

pytestmark = pytest.mark.e2e

VEHICLES = int(os.environ.get("E2E_PIPELINE_BUILDS", "500"))
SEED = 500
TAG = "A"
SETTLE_TIMEOUT = float(os.environ.get("E2E_SETTLE_TIMEOUT", "600"))
SMALL_TIMEOUT = 120
EXTERNAL_SAMPLE = 20  # certificates also checked with xmlsec1 and xmllint
CORRECTABLE = ("actual-mass-missing", "actual-mass-out-of-range", "tyre-not-approved", "colour-missing")


@dataclass(frozen=True)
class Settled:
    run: SampleRun
    records: dict[str, dict[str, Any]]
    events: dict[str, list[StatusEvent]]  # per VIN, as the status topic carried them


@pytest.fixture(scope="module")
async def main_run(pipeline: PrivateStack) -> Settled:
    """500 sample builds, a fifth with a planted defect, published as an MES does, until all settle."""
    run = sample_run(VEHICLES, SEED, TAG, 0.2)
    response = await pipeline.post_approvals(run.approvals)
    assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"
    began = time.monotonic()
    async with pipeline.watch(run.expected) as watch:
        await pipeline.publish(run.builds)
        records = await pipeline.settle(watch, run.expected, SETTLE_TIMEOUT)
    say(f"{len(run.builds)} builds settled {time.monotonic() - began:.1f}s after the first publish")
    return Settled(run, records, {vin: list(seen.events) for vin, seen in watch.seen.items()})


async def test_clean_builds_end_archived_and_defective_ones_blocked_with_their_finding_and_owner(
    main_run: Settled,
) -> None:
    run, records = main_run.run, main_run.records
    assert len(run.clean) > 0 and len(run.defective) > 0
    problems = outcome_problems(run, records)
    assert not problems, f"{len(problems)} of {len(run.builds)} records are not as planted:{show(problems)}"


async def test_every_archived_certificate_verifies_with_the_seal_and_keeps_the_official_schema(
    main_run: Settled, pipeline: PrivateStack, tmp_path: Path
) -> None:
    check = CertificateCheck.of(pipeline)
    clean = [b.vin for b in main_run.run.clean]
    responses = await pipeline.certificates(clean)
    problems = [
        f"{vin}: {r.status_code} revision {r.headers.get('X-Coc-Revision')}"
        for vin, r in responses.items()
        if r.status_code != 200 or r.headers.get("X-Coc-Revision") != "1"
    ]
    assert not problems, f"certificates missing or of the wrong revision:{show(problems)}"
    for vin, response in responses.items():
        problems += check.in_process(vin, response.content)
    assert not problems, f"certificates that do not verify:{show(problems)}"

    step = max(1, len(clean) // EXTERNAL_SAMPLE)
    files = []
    for vin in clean[::step][:EXTERNAL_SAMPLE]:
        files.append(tmp_path / f"{vin}.xml")
        files[-1].write_bytes(responses[vin].content)
    problems = check.external(files)
    assert not problems, f"the independent tools reject certificates:{show(problems)}"


async def test_each_record_is_one_trace_across_the_services_named_in_every_status_event(
    main_run: Settled,
) -> None:
    """The trace context rides in the Kafka headers: were it lost at a hop, the
    next service would start a trace of its own and its events would name it."""
    stages = ("intake", "validation", "render", "signing", "archive")
    problems: list[str] = []
    traces: dict[str, str] = {}
    for build in main_run.run.clean:
        events = [e for e in main_run.events[build.vin] if e.revision == build.revision]
        seen_stages = {e.stage for e in events}
        ids = {e.trace_id for e in events}
        trace = next(iter(ids)) if len(ids) == 1 else None
        if not set(stages) <= seen_stages:
            problems.append(f"{build.vin}: events only from {sorted(seen_stages)}")
        elif trace is None:
            by_stage = {e.stage: e.trace_id for e in events}
            problems.append(f"{build.vin}: trace ids per stage {by_stage}")
        else:
            traces[build.vin] = trace
    assert not problems, f"records not carried in one trace:{show(problems)}"
    assert len(set(traces.values())) == len(traces), "two records share a trace"
    assert all(len(t) == 32 and int(t, 16) for t in traces.values()), "trace ids are not W3C trace ids"


async def test_demo_counts_its_own_vehicles_on_a_stack_that_holds_others(
    main_run: Settled, pipeline: PrivateStack, tmp_path: Path
) -> None:
    """`coc demo` (the main job) run on a stack that already holds the main run's vehicles."""
    result = await asyncio.to_thread(
        pipeline.coc, "demo", "--vehicles", "60", "--seed", "61", "--out", str(tmp_path)
    )
    assert result.returncode == 0, f"coc demo failed:\n{result.stdout}{result.stderr}"
    defects = json.loads((tmp_path / "samples" / "defects.json").read_text())
    builds = (tmp_path / "samples" / "builds.jsonl").read_text().splitlines()
    assert len(builds) == 60 and 0 < len(builds) - len(defects) < 60
    # Besides the samples the demo sends one completed vehicle (stage 2) on an imported chassis cab's
    # certificate; it is clean, so it is archived and written with the others.
    assert "a multistage vehicle: base certificate" in result.stdout, result.stdout
    clean = len(builds) - len(defects) + 1
    lines = result.stdout.splitlines()
    assert "61 vehicles, per state and vehicle group" in lines, result.stdout
    header = next(n for n, line in enumerate(lines) if line.split()[:2] == ["state", "all"])
    totals: dict[str, int] = {}
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        state, count = line.split()[:2]  # the state and its count over all groups
        totals[state] = int(count)
    blocked, waiting = totals.get("blocked", 0), totals.get("needs_review", 0)
    assert totals.get("archived") == clean and blocked + waiting == len(defects), totals
    written = sorted(p.stem for p in (tmp_path / "certificates").glob("*.xml"))
    assert len(written) == clean
    assert f"{clean} certificates in {(tmp_path / 'certificates').resolve()}, {clean} valid" in result.stdout


async def test_defective_builds_get_no_certificate(main_run: Settled, pipeline: PrivateStack) -> None:
    responses = await pipeline.certificates(b.vin for b in main_run.run.defective)
    issued = [vin for vin, response in responses.items() if response.status_code != 404]
    assert not issued, f"defective builds with a certificate: {issued}"


async def test_a_correction_of_a_blocked_build_is_archived_as_its_second_revision(
    main_run: Settled, pipeline: PrivateStack
) -> None:
    run = main_run.run
    blocked = {run.defects[b.build_id].defect: b for b in run.defective}
    chosen = [blocked[kind] for kind in CORRECTABLE if kind in blocked]
    assert chosen, "the sample run has no correctable defect"
    corrections = [
        clean_twin(SEED, VEHICLES, TAG, b).model_copy(update={"revision": 2, "vin": b.vin}) for b in chosen
    ]
    records = await pipeline.publish_and_settle(corrections, SMALL_TIMEOUT)

    for build in chosen:
        record = records[build.vin]
        assert (record["state"], record["revision"]) == ("archived", 2), f"{build.vin}: {describe(record)}"
        assert record["findings"] == [], f"{build.vin}: findings stay open: {record['findings']}"
        history = [(e["revision"], e["state"]) for e in record["timeline"]]
        assert (1, "blocked") in history and (2, "archived") in history, f"{build.vin}: {history}"
        certificate = await pipeline.certificate(build.vin)
        assert certificate.status_code == 200, f"{build.vin}: {certificate.status_code}"
        assert certificate.headers["X-Coc-Revision"] == "2"
        assert certificate.headers["X-Coc-Version-Number"] == "1", "revision 1 never got a certificate"
        assert CertificateCheck.of(pipeline).in_process(build.vin, certificate.content) == []
        assert (await pipeline.certificate(build.vin, 1)).status_code == 404


async def test_a_group_released_by_review_waits_for_a_reviewer_whose_acceptance_archives_it(
    pipeline: PrivateStack,
) -> None:
    builds = [
        b.model_copy(update={"vehicle_group": REVIEW_GROUP})
        for b in sample_run(2, seed=77, tag="B", defect_share=0.0).builds
    ]
    accepted, waiting = builds
    expected = {b.vin: 1 for b in builds}
    async with pipeline.watch(expected) as watch:
        await pipeline.publish(builds)
        records = await pipeline.settle(watch, expected, SMALL_TIMEOUT)
        for build in builds:
            record = records[build.vin]
            assert record["state"] == "needs_review", f"{build.vin}: {describe(record)}"
            assert [(f["code"], f["owner"]) for f in record["findings"]] == [("GROUP_REVIEW", "compliance")]
            assert (await pipeline.certificate(build.vin)).status_code == 404

        response = await pipeline.post_review(accepted.vin, 1, "accept", "e2e reviewer")
        assert response.status_code == 202, f"POST /v1/reviews: {response.status_code} {response.text}"
        await watch.wait(lambda w: w.seen[accepted.vin].state == "archived", SMALL_TIMEOUT, "archived")
    record = await until_state(pipeline, accepted.vin, "archived")
    assert record["revision"] == 1 and record["findings"] == []
    certificate = await pipeline.certificate(accepted.vin)
    assert certificate.status_code == 200
    assert CertificateCheck.of(pipeline).in_process(accepted.vin, certificate.content) == []
    still = await pipeline.record(waiting.vin)
    assert still is not None and still["state"] == "needs_review", (
        f"unreviewed {waiting.vin}: {describe(still)}"
    )


async def test_malformed_messages_go_to_the_dlq_with_a_reason_and_the_partition_goes_on(
    pipeline: PrivateStack,
) -> None:
    good, after_1, after_2 = sample_run(3, seed=78, tag="C", defect_share=0.0).builds
    key = good.vin.encode()
    broken = {
        "not JSON": b'{"vin": "' + key + b'", "revision": 1,',
        "revision": broken_field(good, revision="two"),
        "vin": json.dumps({k: v for k, v in good.model_dump(mode="json").items() if k != "vin"}).encode(),
    }
    partitions = await pipeline.publish_raw([Message(value, key) for value in broken.values()])
    partitions += await pipeline.publish_raw([Message.of(good)])
    assert len(set(partitions)) == 1, f"one key, one partition: {partitions}"
    same_partition = [dataclasses.replace(Message.of(b), partition=partitions[0]) for b in (after_1, after_2)]
    expected = {b.vin: 1 for b in (good, after_1, after_2)}
    async with pipeline.watch(expected) as watch:
        await pipeline.publish_raw(same_partition)
        records = await pipeline.settle(watch, expected, SMALL_TIMEOUT)
    stuck = {vin: describe(r) for vin, r in records.items() if r["state"] != "archived"}
    assert not stuck, f"builds after the malformed messages were not archived: {stuck}"

    letters = await pipeline.dead_letters(topics.BUILDS, {good.vin: len(broken)})
    assert sorted(letter.value.encode() for letter in letters) == sorted(broken.values())
    for what, value in broken.items():
        letter = next(x for x in letters if x.value.encode() == value)
        assert letter.source_topic == topics.BUILDS and letter.partition == partitions[0]
        assert what.split()[-1].lower() in letter.reason.lower(), f"reason for a bad {what}: {letter.reason}"


async def test_poison_builds_go_to_the_dlq_with_their_bytes_and_good_builds_after_them_archive(
    pipeline: PrivateStack,
) -> None:
    good, after, other = sample_run(3, seed=81, tag="P", defect_share=0.0).builds
    key = good.vin.encode()
    poison = {
        "garbage": os.urandom(900_000),
        "key": other.model_dump_json().encode(),  # a valid build under another VIN's key
        "colours": broken_field(good, colours=["1"] * 11),
    }
    partitions = await pipeline.publish_raw([Message(value, key) for value in poison.values()])
    expected = {good.vin: 1, after.vin: 1}
    async with pipeline.watch(expected) as watch:
        partitions += await pipeline.publish_raw(
            [Message.of(good), dataclasses.replace(Message.of(after), partition=partitions[0])]
        )
        records = await pipeline.settle(watch, expected, SMALL_TIMEOUT)
    assert len(set(partitions)) == 1, f"all on one partition: {partitions}"
    stuck = {vin: describe(r) for vin, r in records.items() if r["state"] != "archived"}
    assert not stuck, f"builds after the poison were not archived: {stuck}"

    letters = await pipeline.dead_letters(topics.BUILDS, {good.vin: len(poison)})
    by_hash = {letter.value_sha256: letter for letter in letters}
    for what, value in poison.items():
        letter = by_hash[hashlib.sha256(value).hexdigest()]  # the whole value's hash, even when cut
        kept = base64.b64decode(letter.value_b64 or "")
        assert letter.value_size == len(value) and kept == value[: letter.value_kept], what
        assert letter.value_cut == (len(kept) < len(value)), what
    assert "differs from the message key" in by_hash[hashlib.sha256(poison["key"]).hexdigest()].reason
    assert "colours" in by_hash[hashlib.sha256(poison["colours"]).hexdigest()].reason


async def test_a_message_with_wrong_types_and_a_readable_vin_is_rejected_with_the_reason(
    pipeline: PrivateStack,
) -> None:
    (build,) = sample_run(1, seed=79, tag="D", defect_share=0.0).builds
    value = broken_field(build, revision="two", actual_mass_kg="heavy")
    await pipeline.publish_raw([Message(value, build.vin.encode())])
    record = await until_state(pipeline, build.vin, "rejected")
    reason = record["timeline"][-1]["reason"] or ""
    assert "revision" in reason and "actual_mass_kg" in reason, f"reason names the fields: {reason!r}"
    (letter,) = await pipeline.dead_letters(topics.BUILDS, {build.vin: 1})
    assert letter.value.encode() == value and "revision" in letter.reason


async def test_requests_need_a_token_and_writes_the_role_of_the_endpoint(pipeline: PrivateStack) -> None:
    (build,) = sample_run(1, seed=80, tag="E", defect_share=0.0).builds
    web, body = pipeline.web, build.model_dump_json()
    json_body = {"Content-Type": "application/json"}
    intake, status, archive = pipeline.url("intake"), pipeline.url("status"), pipeline.url("archive")

    for method, url in (
        ("GET", f"{status}/v1/records/{build.vin}"),
        ("GET", f"{status}/v1/readiness"),
        ("GET", f"{archive}/v1/certificates/{build.vin}"),
        ("POST", f"{intake}/v1/builds"),
    ):
        response = await web.request(
            method, url, content=body if method == "POST" else None, headers=json_body
        )
        assert response.status_code == 401, f"{method} {url} without a token: {response.status_code}"
    unknown = await web.get(f"{status}/v1/readiness", headers={"Authorization": "Bearer not-a-token"})
    assert unknown.status_code == 401

    for role, url in ((Role.VIEWER, f"{intake}/v1/builds"), (Role.MES, f"{intake}/v1/reviews")):
        response = await web.post(url, content=body, headers={**pipeline.auth(role), **json_body})
        assert response.status_code == 403, f"POST {url} as {role.value}: {response.status_code}"

    response = await web.post(
        f"{intake}/v1/builds", content=body, headers={**pipeline.auth(Role.MES), **json_body}
    )
    assert response.status_code == 202, f"POST /v1/builds as mes: {response.status_code} {response.text}"
    assert response.json() == {"accepted": [build.record_id]}
    await until_state(pipeline, build.vin, "archived")


async def test_builds_blocked_on_an_unloaded_version_are_archived_once_type_approval_loads_it(
    pipeline: PrivateStack,
) -> None:
    """Validation keeps blocked records and checks them again when an approval arrives.

    The version is one of this test's own (an extension of the version each build
    was made to: same masses and tyres, new name), so no other test's approval
    table changes.
    """
    run = sample_run(4, seed=91, tag="V", defect_share=0.0)
    approvals = {a.key: a for a in run.approvals}
    builds, loaded = [], {}
    for build in run.builds:
        ref = build.approval.model_copy(update={"version": f"{build.approval.version}-E2E"})
        builds.append(build.model_copy(update={"approval": ref}))
        loaded[ref.key] = approvals[build.approval.key].model_copy(update={"version": ref.version})
    records = await pipeline.publish_and_settle(builds, SMALL_TIMEOUT)
    for build in builds:
        record = records[build.vin]
        assert record["state"] == "blocked", f"{build.vin}: {describe(record)}"
        assert [(f["code"], f["owner"]) for f in record["findings"]] == [
            ("APPROVAL_UNKNOWN", "type-approval")
        ]

    response = await pipeline.post_approvals(list(loaded.values()))
    assert response.status_code == 202, f"POST /v1/approvals: {response.status_code} {response.text}"

    check = CertificateCheck.of(pipeline)
    for build in builds:
        record = await until_state(pipeline, build.vin, "archived")
        assert record["revision"] == build.revision and record["findings"] == []
        certificate = await pipeline.certificate(build.vin)
        assert certificate.status_code == 200, f"{build.vin}: {certificate.status_code}"
        assert check.in_process(build.vin, certificate.content) == []


def broken_field(build: BuildRecord, **values: Any) -> bytes:
    """The build's JSON with fields set to values the contract refuses."""
    return json.dumps({**build.model_dump(mode="json"), **values}).encode()


async def until_state(
    pipeline: PrivateStack, vin: str, state: str, timeout: float = SMALL_TIMEOUT
) -> dict[str, Any]:
    """Poll the status API until the VIN's record is in ``state``; fail naming where it stands."""
    deadline = time.monotonic() + timeout
    while True:
        record = await pipeline.record(vin)
        if record is not None and record["state"] == state:
            return record
        assert time.monotonic() < deadline, f"{vin} not {state} after {timeout:.0f}s: {describe(record)}"
        await asyncio.sleep(0.5)
