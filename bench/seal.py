"""Seal rates with a file key and with a key on a PKCS#11 token (SoftHSM2), in the same run.

    python -m bench.seal [--seconds S] [--sessions N]

Three pairs, each measured in alternating blocks (``bench.__main__.paired_rates``'s
way, but on wall-clock time, since a token's work need not happen in this thread):
the raw RSA-2048 signature over SignedInfo-sized bytes (``FileKeySigner`` against
``TokenSigner``); the whole seal of the official specimen (parse, canonicalise,
digest, sign, check) in this thread; and the whole seal on the signing service's
pool of threads, as many as the token has sessions. The token is a fresh SoftHSM2
token in a temporary folder (``devkit.hsm``), removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devkit.hsm import make_dev_token
from devkit.keys import generate_dev_seal
from services.signing.adapters.keys import load_seal
from services.signing.seal import Seal
from services.signing.settings import SigningSettings
from shared.settings import CocSettings
from shared.xml import DSIG_NS, parse_bytes


def wall_rates(
    first: Callable[[], Any], second: Callable[[], Any], seconds: float, block: int = 50
) -> tuple[float, float]:
    """Calls per wall-clock second of two actions, measured in alternating blocks."""
    for _ in range(10):
        first()
        second()
    spent, done = [0.0, 0.0], [0, 0]
    while sum(spent) < 2 * seconds:
        for side, action in enumerate((first, second)):
            start = time.perf_counter()
            for _ in range(block):
                action()
            spent[side] += time.perf_counter() - start
            done[side] += block
    return done[0] / spent[0], done[1] / spent[1]


def pooled(seal: Seal, document: bytes, threads: ThreadPoolExecutor, size: int) -> Callable[[], Any]:
    """One call seals ``size`` documents at once on ``threads``, as the service's holder does."""

    def run() -> None:
        for future in [threads.submit(seal.sign, document) for _ in range(size)]:
            future.result()

    return run


def unsigned_specimen() -> bytes:
    xsd = CocSettings().xsd_path()
    root = parse_bytes((xsd.parent / "specimen-M1-CHR.xml").read_bytes())
    signature = root.find(f"{{{DSIG_NS}}}Signature")
    if signature is not None:
        root.remove(signature)
    from lxml import etree

    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measured side")
    parser.add_argument("--sessions", type=int, default=2, help="token sessions and signing threads")
    args = parser.parse_args()

    dev = generate_dev_seal("rsa-2048")
    file_seal = Seal.from_pem(dev.key_pem, dev.cert_pem)
    folder = Path(tempfile.mkdtemp(prefix="coc-bench-hsm-"))
    token = make_dev_token(folder / "hsm")
    os.environ.update(token.env())
    os.environ["COC_SEAL_PKCS11_SESSIONS"] = str(args.sessions)
    token_seal = load_seal(SigningSettings(_env_file=None))
    document = unsigned_specimen()
    signed_info = b"<ds:SignedInfo>" + b"x" * 900 + b"</ds:SignedInfo>"
    figures: dict[str, tuple[float, float]] = {}
    try:
        figures["raw RSA-2048 signature"] = wall_rates(
            lambda: file_seal.signer.sign(signed_info),
            lambda: token_seal.signer.sign(signed_info),
            args.seconds,
        )
        figures["whole seal, one thread"] = wall_rates(
            lambda: file_seal.sign(document), lambda: token_seal.sign(document), args.seconds, block=20
        )
        with ThreadPoolExecutor(args.sessions) as threads:
            file_rate, token_rate = wall_rates(
                pooled(file_seal, document, threads, args.sessions),
                pooled(token_seal, document, threads, args.sessions),
                args.seconds,
                block=10,
            )
        figures[f"whole seal, {args.sessions} threads"] = (
            file_rate * args.sessions,
            token_rate * args.sessions,
        )
    finally:
        token_seal.signer.close()  # type: ignore[attr-defined]
        shutil.rmtree(folder, ignore_errors=True)

    width = max(map(len, figures))
    print(f"{'':{width}}  {'file key':>10}  {'token':>10}  token/file")
    for name, (file_rate, token_rate) in figures.items():
        print(f"{name:{width}}  {file_rate:8.0f}/s  {token_rate:8.0f}/s  {token_rate / file_rate:9.2f}")
    print(
        f"(token: SoftHSM2 via python-pkcs11, {args.sessions} sessions; {os.cpu_count()} cores, wall clock)"
    )


if __name__ == "__main__":
    main()
