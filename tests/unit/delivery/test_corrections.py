"""A corrected certificate (IviVersionNumber > 1) is delivered where the original went, as its correction."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.delivery import nap, vca
from services.delivery.deliver import Delivery, Step, corrected

pytestmark = pytest.mark.unit

SIGNED = b"<InitialVehicleInformation>signed</InitialVehicleInformation>"


def delivered(version: int, destination: str = "nap-de", reference: str = "ref-1") -> Delivery:
    return Delivery(
        id=f"VIN:{version}:{destination}",
        vin="VIN",
        revision=version,
        record_id=f"VIN:{version}",
        version_number=version,
        reference_id=reference,
        sha256="ab" * 32,
        destination=destination,
        step=Step.DELIVERED,
    )


def test_a_correction_names_the_newest_earlier_version_delivered_of_its_vin() -> None:
    first, second = delivered(1, reference="ref-1"), delivered(2, reference="ref-2")
    unrouted = replace(delivered(2, destination="-"), id="VIN:2:-")
    assert corrected(3, [first, second, unrouted]) == second
    assert corrected(2, [first, second]) == first
    assert corrected(2, [unrouted]) is None  # never delivered anywhere: nothing to correct there
    assert corrected(1, [first]) is None


def test_the_nap_message_of_a_correction_carries_its_version_number_and_the_reference_it_corrects() -> None:
    request = nap.envelope(SIGNED, "msg-2", version_number=2, corrects="ref-1")
    assert nap.correction_of(request) == (2, "ref-1")
    assert nap.document_of(request) == ("msg-2", SIGNED)  # the document itself untouched


def test_a_first_certificate_is_sent_without_a_correction_marker() -> None:
    assert nap.correction_of(nap.envelope(SIGNED, "msg-1")) is None
    assert nap.correction_of(nap.envelope(SIGNED, "msg-1", version_number=1, corrects=None)) is None


def test_a_correction_sent_to_the_vca_names_its_version_and_the_reference_it_corrects_in_headers() -> None:
    assert vca.correction_headers(2, "ref-1") == {
        "X-Ivi-Version-Number": "2",
        "X-Previous-Ivi-Reference-Id": "ref-1",
    }
    assert vca.correction_headers(1, None) == {}
