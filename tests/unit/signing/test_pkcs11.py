"""The seal through a PKCS#11 token: a real SoftHSM2 token, made by the test in its own folder.

What leaves signing must verify with our verifier and with xmlsec1 whether the key is a
file or on a token; the token's key must not be readable; no key file is read in that mode.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from cryptography import x509

from devkit.hsm import KEY_LABEL, TOKEN_LABEL, DevToken, make_dev_token
from services.signing.adapters.keys import SealHolder, SealNotConfigured, load_seal
from services.signing.adapters.pkcs11 import library, open_token_signer
from services.signing.seal import Seal, SigningError, certificate_fingerprint, verify
from services.signing.settings import SigningSettings
from shared.xmldsig import XADES_NS

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevToken]:
    if shutil.which("softhsm2-util") is None:
        pytest.fail("SoftHSM2 is not installed: `make system-deps` installs it (Debian softhsm2)")
    made = make_dev_token(tmp_path_factory.mktemp("hsm"))
    yield made


def settings_for(token: DevToken, **extra: str) -> SigningSettings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COC_")}
    with mock.patch.dict(os.environ, {**env, **token.env(), **extra}, clear=True):
        return SigningSettings(_env_file=None)


@pytest.fixture(scope="module")
def token_seal(token: DevToken) -> Iterator[Seal]:
    seal = load_seal(settings_for(token))
    yield seal
    close = getattr(seal.signer, "close", None)
    if close:
        close()


def xmlsec1(document: bytes, trusted: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "signed.xml").write_bytes(document)
    return subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--id-attr:Id",
            f"{XADES_NS}:SignedProperties",
            "--trusted-pem",
            str(trusted),
            str(tmp_path / "signed.xml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("seal_format", ["xmldsig", "xades-b"])
def test_a_document_sealed_through_the_token_verifies_with_our_verifier_and_xmlsec1(
    token: DevToken, unsigned_specimen: bytes, tmp_path: Path, seal_format: str
) -> None:
    seal = load_seal(settings_for(token, COC_SEAL_FORMAT=seal_format))
    try:
        signed = seal.sign(unsigned_specimen)
    finally:
        seal.signer.close()  # type: ignore[attr-defined]

    assert verify(signed, token.cert.read_bytes()).valid
    checked = xmlsec1(signed, token.ca, tmp_path)
    assert checked.returncode == 0, checked.stderr[-1000:]
    assert seal.fingerprint == certificate_fingerprint(
        x509.load_pem_x509_certificate(token.cert.read_bytes())
    )


def test_the_token_key_cannot_be_read_out(token: DevToken) -> None:
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    pin = token.pin_file.read_text().strip()
    lib = library(token.module)
    with lib.get_token(token_label=TOKEN_LABEL).open(user_pin=pin) as session:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.RSA, label=KEY_LABEL)
        assert key[Attribute.EXTRACTABLE] is False and key[Attribute.SENSITIVE] is True
        with pytest.raises(pkcs11.AttributeSensitive):
            key[Attribute.PRIVATE_EXPONENT]
        with pytest.raises((pkcs11.AttributeSensitive, pkcs11.AttributeTypeInvalid)):
            key[Attribute.VALUE]


def test_an_extractable_key_on_the_token_is_refused_as_a_seal_key(token: DevToken, token_seal: Seal) -> None:
    from pkcs11 import Attribute, KeyType

    pin = token.pin_file.read_text().strip()
    lib = library(token.module)
    with lib.get_token(token_label=TOKEN_LABEL).open(rw=True) as session:  # logged in by token_seal
        session.generate_keypair(
            KeyType.RSA,
            2048,
            label="copyable",
            store=True,
            private_template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False, Attribute.TOKEN: True},
        )
    with pytest.raises(SigningError, match="can be extracted"):
        open_token_signer(token.module, TOKEN_LABEL, "copyable", pin, 1)


def test_with_a_module_set_no_key_file_is_read(token: DevToken, tmp_path: Path) -> None:
    missing = tmp_path / "no-such.key"
    seal = load_seal(settings_for(token, COC_SEAL_KEY=str(missing)))
    try:
        assert seal.signer.blocking and not missing.exists()
    finally:
        seal.signer.close()  # type: ignore[attr-defined]


def test_a_pin_file_others_can_read_is_refused(token: DevToken, tmp_path: Path) -> None:
    loose = tmp_path / "pin"
    loose.write_text(token.pin_file.read_text())
    loose.chmod(0o644)
    with pytest.raises(SigningError, match="readable by others"):
        load_seal(settings_for(token, COC_SEAL_PKCS11_PIN_FILE=str(loose)))


def test_a_missing_token_setting_is_named(token: DevToken) -> None:
    settings = settings_for(token)
    with pytest.raises(SealNotConfigured, match="COC_SEAL_PKCS11_KEY"):
        load_seal(settings.model_copy(update={"seal_pkcs11_key": None}))


def test_an_unknown_token_label_is_named(token: DevToken) -> None:
    with pytest.raises(SigningError, match="no single token labelled 'elsewhere'"):
        load_seal(settings_for(token, COC_SEAL_PKCS11_TOKEN="elsewhere"))


async def test_the_holder_signs_through_the_token_on_its_threads_never_the_event_loop(
    unsigned_specimen: bytes, token: DevToken
) -> None:
    seal = load_seal(settings_for(token, COC_SEAL_PKCS11_SESSIONS="3"))
    threads: set[str] = set()
    original = seal.signer.sign

    def watched(data: bytes) -> bytes:
        threads.add(threading.current_thread().name)
        return original(data)

    holder = SealHolder(seal=seal)
    try:
        with mock.patch.object(seal.signer, "sign", watched):
            signed = await asyncio.gather(*(holder.sign(seal, unsigned_specimen) for _ in range(6)))
    finally:
        holder.close()
    assert all(verify(document, token.cert.read_bytes(), second_opinion=False).valid for document in signed)
    assert threads and all(name.startswith("seal") for name in threads)
