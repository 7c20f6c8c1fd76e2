"""The seal key on a PKCS#11 token (an HSM; SoftHSM2 in development and tests).

The private key never leaves the token: ``TokenSigner.sign`` hands SignedInfo's
canonical bytes to the module (CKM_SHA256_RSA_PKCS, PKCS#11 v2.40 §2.1.13: the token
hashes and pads) and gets the SignatureValue back. A key that the token would let
out (CKA_EXTRACTABLE true or CKA_SENSITIVE false) is refused: a seal key that can be
copied is a file key with extra steps.

Sessions are opened once, at start, and pooled: each signing thread takes one,
signs, and gives it back. python-pkcs11 initialises the module with
``C_Initialize(NULL)``, which tells the module that the application does not call it
from several threads at once (PKCS#11 v2.40 §5.4; SoftHSM2 then switches its own
locking off), so the calls into the module are serialised here by one lock; the
threads still take the parse, canonicalisation and check of each document off the
event loop. The PIN is passed in by the caller (read from its file by
``adapters.keys``) and never logged.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa

from services.signing.seal import SigningError

# One loaded module per path for the whole process: C_Initialize may run only once.
_LIBRARIES: dict[str, Any] = {}
_LIBRARIES_LOCK: Final = threading.Lock()


class TokenSigner:
    """RSASSA-PKCS1-v1_5 / SHA-256 signatures by a private key on a PKCS#11 token."""

    blocking = True

    def __init__(self, sessions: list[Any], keys: list[Any], public_key: rsa.RSAPublicKey) -> None:
        self._sessions = sessions  # the first is the logged-in one; closed last
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for key in keys:
            self._pool.put(key)
        self._public_key = public_key
        self._module_lock = threading.Lock()
        self.size = len(keys)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public_key

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism, PKCS11Error

        with self._session_key() as key:
            try:
                with self._module_lock:
                    return bytes(key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS))
            except PKCS11Error as exc:
                raise SigningError(f"the token refused to sign: {type(exc).__name__}") from None

    @contextmanager
    def _session_key(self) -> Iterator[Any]:
        key = self._pool.get()
        try:
            yield key
        finally:
            self._pool.put(key)

    def close(self) -> None:
        _close(self._sessions)
        self._sessions = []


def _close(sessions: list[Any]) -> None:
    """Close sessions, the logged-in (first) one last, so its logout does not end the others' work."""
    from pkcs11 import PKCS11Error

    for session in reversed(sessions):
        try:
            session.close()
        except PKCS11Error:  # already closed or the module is gone: nothing is left to free
            continue


def library(module: Path) -> Any:
    """The loaded PKCS#11 module at ``module``, loaded and initialised once per process."""
    import pkcs11

    path = str(module)
    with _LIBRARIES_LOCK:
        if path not in _LIBRARIES:
            if not os.path.isfile(path):
                raise SigningError(f"COC_SEAL_PKCS11_MODULE: no PKCS#11 module at {path}")
            try:
                _LIBRARIES[path] = pkcs11.lib(path)
            except pkcs11.PKCS11Error as exc:
                raise SigningError(f"COC_SEAL_PKCS11_MODULE: cannot load {path}: {exc}") from None
        return _LIBRARIES[path]


def open_token_signer(module: Path, token_label: str, key_label: str, pin: str, sessions: int) -> TokenSigner:
    """Log in to the token, find the seal key by its label, check it cannot leave, open ``sessions``."""
    import pkcs11

    lib = library(module)
    try:
        token = lib.get_token(token_label=token_label)
    except (pkcs11.NoSuchToken, pkcs11.MultipleTokensReturned):
        raise SigningError(f"COC_SEAL_PKCS11_TOKEN: no single token labelled {token_label!r}") from None
    try:
        opened = [token.open(user_pin=pin)]
    except (pkcs11.PinIncorrect, pkcs11.PinLenRange):
        raise SigningError("COC_SEAL_PKCS11_PIN_FILE: the token refused the PIN") from None
    except pkcs11.UserAlreadyLoggedIn:  # another signer of this process is logged in already
        opened = [token.open()]
    try:
        # Login state is shared by a token's sessions (PKCS#11 v2.40 §5.6): the others need no PIN.
        opened += [token.open() for _ in range(sessions - 1)]
        keys = [_private_key(session, key_label) for session in opened]
        return TokenSigner(opened, keys, _public_key(opened[0], key_label, keys[0]))
    except pkcs11.PKCS11Error as exc:
        _close(opened)
        raise SigningError(f"cannot use the token's seal key: {type(exc).__name__}") from None
    except SigningError:
        _close(opened)
        raise


def _private_key(session: Any, label: str) -> Any:
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    try:
        key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.RSA, label=label)
    except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
        raise SigningError(f"COC_SEAL_PKCS11_KEY: no single RSA private key labelled {label!r}") from None
    if key[Attribute.EXTRACTABLE] or not key[Attribute.SENSITIVE]:
        raise SigningError(
            f"the token key {label!r} can be extracted (CKA_EXTRACTABLE true or CKA_SENSITIVE false); "
            "a seal key must stay on the token"
        )
    return key


def _public_key(session: Any, label: str, private: Any) -> rsa.RSAPublicKey:
    """The key's public half, from the token's public key object (or the private key's own attributes)."""
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    try:
        source = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
    except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
        source = private  # CKA_MODULUS and CKA_PUBLIC_EXPONENT are public attributes of an RSA private key
    modulus = int.from_bytes(source[Attribute.MODULUS], "big")
    exponent = int.from_bytes(source[Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()
