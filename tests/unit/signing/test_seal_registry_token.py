"""A holder's seal registered as a key label on the PKCS#11 token signing uses (a real SoftHSM2 token)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from unittest import mock

import pytest

from devkit.hsm import KEY_LABEL, DevToken, make_dev_token
from services.signing.adapters.keys import registered_opener
from services.signing.registry import Missing, SealBook
from services.signing.seal import Seal, verify
from services.signing.settings import SigningSettings
from shared.contracts.seals import SealRegistration

pytestmark = pytest.mark.unit

MOPANI = "MOPANI UTILITY VEHICLES (PTY) LTD"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevToken]:
    if shutil.which("softhsm2-util") is None:
        pytest.fail("SoftHSM2 is not installed: `make system-deps` installs it (Debian softhsm2)")
    yield make_dev_token(tmp_path_factory.mktemp("hsm"))


def settings_for(token: DevToken) -> SigningSettings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COC_")}
    with mock.patch.dict(os.environ, {**env, **token.env()}, clear=True):
        return SigningSettings(_env_file=None)


def registration(token: DevToken, label: str) -> SealRegistration:
    return SealRegistration(
        holder=MOPANI,
        certificate_pem=token.cert.read_text(),
        pkcs11_key=label,
        set_by="integration tester",
        set_at=dt.datetime.now(dt.UTC),
    )


def test_a_token_key_label_registered_for_a_holder_seals_its_records_through_the_token(
    token: DevToken, unsigned_specimen: bytes
) -> None:
    book = SealBook()
    assert book.take(registration(token, KEY_LABEL), registered_opener(settings_for(token)))
    seal = book.choose(MOPANI)
    try:
        assert isinstance(seal, Seal) and seal.signer.blocking
        result = verify(seal.sign(unsigned_specimen), token.cert.read_bytes())
        assert result.valid, result.reasons
    finally:
        for opened in book.all_seals():
            opened.signer.close()  # type: ignore[attr-defined]


def test_a_label_the_token_does_not_hold_leaves_the_holder_waiting_with_the_reason(token: DevToken) -> None:
    book = SealBook()
    book.take(registration(token, "no-such-key"), registered_opener(settings_for(token)))
    missing = book.choose(MOPANI)
    assert isinstance(missing, Missing) and "cannot seal" in missing.reason


def test_a_token_key_without_the_token_settings_is_refused_naming_them(token: DevToken) -> None:
    book = SealBook()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COC_")}
    with mock.patch.dict(os.environ, env, clear=True):
        bare = SigningSettings(_env_file=None)
    book.take(registration(token, KEY_LABEL), registered_opener(bare))
    missing = book.choose(MOPANI)
    assert isinstance(missing, Missing) and "COC_SEAL_PKCS11_MODULE" in missing.reason
