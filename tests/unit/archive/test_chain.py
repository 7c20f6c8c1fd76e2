"""The hash chain of a vehicle's certificates: each links to the one stored before it, the head only moves on."""

from __future__ import annotations

import datetime as dt

import pytest

from services.archive.chain import Head, advances, receipt_for
from shared.contracts.events import Document

pytestmark = pytest.mark.unit
AT = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def document(revision: int, sha: str) -> Document:
    return Document(
        record_id=f"WVWZZZ1JZXW000001:{revision}",
        vin="WVWZZZ1JZXW000001",
        revision=revision,
        version_number=revision,
        xml="<x/>",
        sha256=sha,
        signer_fingerprint="f" * 64,
    )


def test_the_first_certificate_of_a_vin_links_to_nothing_and_becomes_the_head() -> None:
    receipt = receipt_for(document(1, "a" * 64), None, AT)
    assert receipt.previous_sha256 is None
    assert (receipt.sha256, receipt.signer_fingerprint, receipt.archived_at) == ("a" * 64, "f" * 64, AT)
    assert advances(None, receipt)


def test_a_newer_revision_links_to_the_head_and_moves_it() -> None:
    head = Head(revision=1, sha256="a" * 64)
    receipt = receipt_for(document(3, "c" * 64), head, AT)
    assert receipt.previous_sha256 == "a" * 64
    assert advances(head, receipt)


@pytest.mark.parametrize("revision", [1, 2])
def test_a_late_older_or_repeated_revision_links_to_nothing_and_never_moves_the_head_back(
    revision: int,
) -> None:
    head = Head(revision=2, sha256="b" * 64)
    receipt = receipt_for(document(revision, "x" * 64), head, AT)
    assert receipt.previous_sha256 is None
    assert not advances(head, receipt)
