"""Throughput per stage on one core, with the baselines measured in the same run.

    python -m bench [--vehicles N] [--seconds S]

Stages: records validated per second; documents rendered and schema-checked per
second; documents sealed per second (RSA-2048, ECDSA P-256). Baselines: lxml
parsing the official specimen and validating it against the official schema;
the raw RSA-2048 signing rate of ``cryptography`` over the same document bytes.
Everything runs in this one process and thread, and time is this thread's CPU
time: the figures are per core, and other work on the machine does not count
against them. Each stage with a baseline is measured in alternating blocks with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from bench.stagecode import rate
from devkit.keys import ALGORITHMS, generate_dev_seal
from devkit.samples import generate
from services.render.document import render
from services.signing.seal import Seal
from services.validation.policy import RulePolicy
from services.validation.rules import ApprovalTable, check
from shared.ivi import IviSchema
from shared.settings import CocSettings
from shared.xml import load_ivi_schema, make_parser

TODAY = dt.date(2026, 11, 26)


def paired_rates(
    first: Callable[[int], Any], second: Callable[[int], Any], items: int, seconds: float
) -> tuple[float, float]:
    """Calls per second of two actions measured in alternating blocks.

    A shared machine speeds up and slows down while a benchmark runs (clock,
    caches); measuring the two in turns exposes both to the same conditions, so
    their ratio holds.
    """
    for i in range(min(items, 50)):
        first(i)
        second(i)
    spent, done = [0.0, 0.0], [0, 0]
    while sum(spent) < 2 * seconds:
        for side, action in enumerate((first, second)):
            start = time.thread_time()
            for _ in range(50):
                action(done[side] % items)
                done[side] += 1
            spent[side] += time.thread_time() - start
    return done[0] / spent[0], done[1] / spent[1]


def sealer(seal: Seal, documents: list[bytes]) -> Callable[[int], bytes]:
    return lambda i: seal.sign(documents[i])


def raw_signer(key: rsa.RSAPrivateKey, documents: list[bytes]) -> Callable[[int], bytes]:
    return lambda i: key.sign(documents[i], padding.PKCS1v15(), hashes.SHA256())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per figure")
    args = parser.parse_args()

    policy = RulePolicy()
    xsd = CocSettings().xsd_path()
    schema = IviSchema.load(xsd)
    samples = generate(args.vehicles, seed=7, defect_share=0.2)
    table = ApprovalTable.of(schema, samples.approvals)
    builds = samples.builds
    clean = [b for b in builds if b.build_id not in samples.defects]
    approvals = [table.get(b.approval.key) for b in clean]
    print(f"{len(builds)} sample builds ({len(clean)} clean), {len(samples.approvals)} approvals; one core\n")

    figures: dict[str, float] = {}
    figures["validate"] = rate(lambda i: check(builds[i], table, policy, TODAY), len(builds), args.seconds)

    def render_one(i: int) -> bytes:
        approval = approvals[i]
        assert approval is not None
        return render(clean[i], approval, version_number=1, schema=schema)

    specimen = (xsd.parent / "specimen-M1-CHR.xml").read_bytes()
    official = load_ivi_schema(xsd)
    xml_parser = make_parser()

    def parse_and_validate(_i: int) -> bool:
        return official.validate(etree.fromstring(specimen, xml_parser))

    rendered, parsed = paired_rates(render_one, parse_and_validate, len(clean), args.seconds)
    figures["render+check"] = rendered
    figures["baseline lxml parse+validate specimen"] = parsed

    documents = [render_one(i) for i in range(min(len(clean), 100))]
    for algorithm in ALGORITHMS:
        dev = generate_dev_seal(algorithm)
        seal = Seal.from_pem(dev.key_pem, dev.cert_pem)
        if isinstance(seal.key, rsa.RSAPrivateKey):
            sealed, raw = paired_rates(
                sealer(seal, documents), raw_signer(seal.key, documents), len(documents), args.seconds
            )
            figures[f"sign {algorithm}"] = sealed
            figures["baseline raw RSA-2048 sign"] = raw
        else:
            figures[f"sign {algorithm}"] = rate(sealer(seal, documents), len(documents), args.seconds)

    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:{width}}  {value:10.0f} /s")
    print()
    render_ratio = figures["render+check"] / figures["baseline lxml parse+validate specimen"]
    sign_ratio = figures["sign rsa-2048"] / figures["baseline raw RSA-2048 sign"]
    print(f"render+check / lxml parse+validate : {render_ratio:.2f}  (target >= 0.80)")
    print(f"sign RSA-2048 / raw RSA-2048 sign   : {sign_ratio:.2f}  (target >= 0.60)")
    print(f"validate                            : {figures['validate']:.0f} /s  (target >= 5000)")


if __name__ == "__main__":
    main()
