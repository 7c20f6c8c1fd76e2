"""Delivery's decisions: routing, who owns a rejection, and what each answer makes of a delivery."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from services.delivery import nap, vca
from services.delivery.deliver import (
    RECEIPTS_KEPT,
    Answer,
    Delivery,
    Reply,
    Step,
    Timing,
    after,
    backoff_s,
    no_route,
    owner_of_rejection,
    route,
)
from shared.contracts import Owner
from shared.contracts.events import State

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
TIMING = Timing(retry_initial_s=2.0, retry_max_s=300.0, poll_s=5.0)
ROUTES = {"nap-lt": ("LT", "LV"), "vca": ("UK",), "nap-default": ("*",)}


def queued(**changes: object) -> Delivery:
    base = Delivery(
        id="VIN:1:nap-lt",
        vin="VIN",
        revision=3,
        record_id="VIN:3",
        version_number=1,
        reference_id="ref",
        sha256="ab" * 32,
        destination="nap-lt",
        step=Step.SENDING,
        attempts=1,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_routes_by_intended_country_and_sends_the_rest_to_the_catch_all_only_when_there_is_one() -> None:
    assert route("LV", ROUTES) == "nap-lt"
    assert route("UK", ROUTES) == "vca"
    assert route("D", ROUTES) == "nap-default"
    assert route(None, ROUTES) == "nap-default"
    assert route("D", {"vca": ("UK",)}) is None
    assert route(None, {"vca": ("UK",)}) is None


def test_a_rejection_goes_to_production_for_a_vehicle_value_integration_for_form_type_approval_for_data() -> (
    None
):
    assert owner_of_rejection("VALUE_OUT_OF_RANGE", "CocDataGroup/MassGroup/ActualMass") is Owner.PRODUCTION
    assert owner_of_rejection("UNKNOWN_CODE", "CocDataGroup/ColourTable/Colour") is Owner.PRODUCTION
    assert owner_of_rejection("SIGNATURE_INVALID", "Signature") is Owner.INTEGRATION
    assert owner_of_rejection("SCHEMA_INVALID", None) is Owner.INTEGRATION
    assert owner_of_rejection("APPROVAL_UNKNOWN", "CocDataGroup/TypeApprovalNumber") is Owner.TYPE_APPROVAL
    assert owner_of_rejection("X", None) is Owner.INTEGRATION


def test_accepted_is_delivered_with_its_receipt_and_the_raw_reply_kept() -> None:
    done = after(
        queued(),
        Reply(Answer.ACCEPTED, "accepted", receipt_id="R1", raw="<ok/>", http_status=200),
        NOW,
        TIMING,
    )
    assert done.step is Step.DELIVERED and done.final and done.state is State.DELIVERED
    assert done.receipt_id == "R1" and done.claim is None
    assert done.receipts[-1]["raw"] == "<ok/>" and done.receipts[-1]["http_status"] == 200


def test_a_rejection_is_final_with_its_reason_owner_and_a_finding_for_that_team() -> None:
    reply = Reply(
        Answer.REJECTED, "actual mass above the approved range", code="RANGE", field="MassGroup/ActualMass"
    )
    rejected = after(queued(), reply, NOW, TIMING)
    assert rejected.step is Step.REJECTED and rejected.final
    assert rejected.state is State.DELIVERY_REJECTED and rejected.owner is Owner.PRODUCTION
    finding = rejected.finding()
    assert finding is not None and finding.owner is Owner.PRODUCTION and finding.code == "RANGE"
    assert "actual mass" in finding.message


def test_a_technical_fault_is_retried_later_each_time_longer_up_to_the_limit() -> None:
    fault = Reply(Answer.TRANSIENT, "did not answer in time")
    first = after(queued(attempts=1), fault, NOW, TIMING)
    assert first.step is Step.RETRYING and not first.final and first.owner is Owner.INTEGRATION
    assert first.next_at is not None and 1.5 <= (first.next_at - NOW).total_seconds() <= 2.5
    late = after(queued(attempts=20), fault, NOW, TIMING)
    assert late.next_at is not None and 240 <= (late.next_at - NOW).total_seconds() <= 360
    assert backoff_s(3, 2.0, 300.0) > backoff_s(1, 2.0, 300.0) * 2.5


def test_a_duplicate_is_what_the_authority_holds_already_so_delivered_or_followed_when_it_was_a_submission() -> (
    None
):
    dup = after(queued(), Reply(Answer.DUPLICATE, "already", receipt_id="R0"), NOW, TIMING)
    assert dup.step is Step.DELIVERED and "already held" in (dup.reason or "")
    followed = after(queued(), Reply(Answer.DUPLICATE, "already", submission_id="S9"), NOW, TIMING)
    assert followed.step is Step.SUBMITTED and followed.submission_id == "S9"


def test_a_submission_is_polled_until_decided_and_a_failed_poll_keeps_it_submitted() -> None:
    submitted = after(queued(), Reply(Answer.SUBMITTED, "202", submission_id="S1"), NOW, TIMING)
    assert submitted.step is Step.SUBMITTED and submitted.next_at == NOW + dt.timedelta(seconds=5)
    still = after(submitted, Reply(Answer.PROCESSING, "processing"), NOW, TIMING)
    assert still.step is Step.SUBMITTED and still.submission_id == "S1"
    cut = after(submitted, Reply(Answer.TRANSIENT, "poll failed"), NOW, TIMING)
    assert cut.step is Step.SUBMITTED
    assert after(submitted, Reply(Answer.ACCEPTED, "ok"), NOW, TIMING).step is Step.DELIVERED


def test_receipts_keep_the_first_and_the_newest() -> None:
    delivery = queued()
    for n in range(RECEIPTS_KEPT + 10):
        delivery = after(delivery, Reply(Answer.TRANSIENT, f"fault {n}"), NOW, TIMING)
    assert len(delivery.receipts) == RECEIPTS_KEPT
    assert (
        delivery.receipts[0]["reason"] == "fault 0"
        and delivery.receipts[-1]["reason"] == f"fault {RECEIPTS_KEPT + 9}"
    )


def test_an_unroutable_certificate_is_reported_to_integration_naming_the_setting() -> None:
    lost = no_route(queued(step=Step.QUEUED), "D")
    assert lost.final and lost.owner is Owner.INTEGRATION and lost.state is State.DELIVERY_REJECTED
    assert "COC_DELIVERY_DESTINATIONS" in (lost.reason or "") and "D" in (lost.reason or "")


def test_the_nap_envelope_carries_the_signed_bytes_untouched() -> None:
    signed = b'<?xml version="1.0"?>\n<a xmlns="x">  spaced \n</a>'
    message_id, document = nap.document_of(nap.envelope(signed, "m-1"))
    assert (message_id, document) == ("m-1", signed)


def test_nap_replies_are_read_as_acceptance_duplicate_rejection_or_fault() -> None:
    from devkit.authorities import soap, soap_fault

    ok = nap.read_reply(
        200,
        soap(
            f'<m:SubmitIviResponse xmlns:m="{nap.SUBMIT_NS}"><m:Status>ACCEPTED</m:Status><m:ReceiptId>R7</m:ReceiptId></m:SubmitIviResponse>'
        ),
    )
    assert ok.answer is Answer.ACCEPTED and ok.receipt_id == "R7"
    rejected = nap.read_reply(
        400, soap_fault("Sender", "colour unknown", "CODE_UNKNOWN", "ColourTable/Colour")
    )
    assert (rejected.answer, rejected.code, rejected.field) == (
        Answer.REJECTED,
        "CODE_UNKNOWN",
        "ColourTable/Colour",
    )
    assert rejected.reason == "colour unknown"
    duplicate = nap.read_reply(400, soap_fault("Sender", "again", "DUPLICATE_REFERENCE", None, "R7"))
    assert duplicate.answer is Answer.DUPLICATE and duplicate.receipt_id == "R7"
    assert nap.read_reply(500, soap_fault("Receiver", "database down")).answer is Answer.TRANSIENT
    assert nap.read_reply(503, b"Service Unavailable").answer is Answer.TRANSIENT
    refused = nap.read_reply(403, b"")
    assert refused.answer is Answer.TRANSIENT and refused.owner is Owner.INTEGRATION


def test_vca_replies_are_read_as_submission_duplicate_rejection_or_fault() -> None:
    assert vca.read_submission(202, b'{"submissionId": "S1"}').submission_id == "S1"
    assert vca.read_submission(409, b'{"submissionId": "S1"}').answer is Answer.DUPLICATE
    bad = vca.read_submission(
        422, b'{"errors": [{"code": "C", "field": "ActualMass", "message": "too heavy"}]}'
    )
    assert (bad.answer, bad.field, bad.reason) == (Answer.REJECTED, "ActualMass", "too heavy")
    assert vca.read_submission(502, b"").answer is Answer.TRANSIENT
    assert vca.read_status(200, b'{"status": "PROCESSING"}').answer is Answer.PROCESSING
    assert vca.read_status(200, b'{"status": "ACCEPTED", "receiptId": "X"}').receipt_id == "X"
    assert vca.read_status(200, b'{"status": "REJECTED", "errors": []}').answer is Answer.REJECTED
    token, lifetime = vca.read_token(200, b'{"access_token": "t", "expires_in": 60}')
    assert (token, lifetime) == ("t", 60.0)
