"""Whether a signed document sent again for an archived record id is the kept one: its bytes, or its document resealed."""

from __future__ import annotations

import pytest

from devkit.keys import generate_dev_seal
from services.archive.content import document_digest, same_document
from services.signing.seal import Seal

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def ecdsa() -> Seal:
    """A seal that seals the same document with other bytes each time (ECDSA signatures are random)."""
    dev = generate_dev_seal("ecdsa-p256")
    return Seal.from_pem(dev.key_pem, dev.cert_pem)


def test_the_same_document_sealed_again_is_the_kept_one_though_its_bytes_differ(
    ecdsa: Seal, unsigned_specimen: bytes
) -> None:
    kept, again = ecdsa.sign(unsigned_specimen), ecdsa.sign(unsigned_specimen)

    assert kept != again
    assert same_document(kept, again) and same_document(kept, kept)
    assert document_digest(kept) is not None


def test_another_document_under_a_seal_is_not_the_kept_one(ecdsa: Seal, unsigned_specimen: bytes) -> None:
    heavier = unsigned_specimen.replace(b"<ActualMass>1547<", b"<ActualMass>1611<")
    assert heavier != unsigned_specimen

    assert not same_document(ecdsa.sign(unsigned_specimen), ecdsa.sign(heavier))


def test_another_document_under_the_kept_ones_seal_is_not_the_kept_one(
    ecdsa: Seal, unsigned_specimen: bytes
) -> None:
    """Its seal names the kept document's digest, but does not verify over what it carries."""
    kept = ecdsa.sign(unsigned_specimen)
    altered = kept.replace(b"<ActualMass>1547<", b"<ActualMass>1611<")
    assert altered != kept and document_digest(altered) == document_digest(kept)

    assert not same_document(kept, altered)


def test_bytes_that_are_no_sealed_document_are_never_the_kept_one(
    ecdsa: Seal, unsigned_specimen: bytes
) -> None:
    kept = ecdsa.sign(unsigned_specimen)

    assert document_digest(b"<not-closed") is None and document_digest(unsigned_specimen) is None
    assert not same_document(kept, b"<not-closed") and not same_document(kept, unsigned_specimen)
