"""The rate of the stages' own code for one certificate, in one process on one core.

What one certificate costs the pipeline's code with no broker and no database
between the steps: validate the build, render and schema-check the document,
seal it (RSA-2048, the development seal), and make its archive receipt (the
hashing and the chain entry; the database write is the database's cost, which
``bench.pipeline`` reports per process). Time is this thread's CPU time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devkit.keys import generate_dev_seal
from devkit.samples import generate
from services.archive.chain import receipt_for
from services.render.document import render
from services.signing.seal import Seal
from services.validation.policy import RulePolicy
from services.validation.rules import ApprovalTable, check
from shared.contracts.events import Document
from shared.ivi import IviSchema
from shared.settings import CocSettings

TODAY = dt.date(2026, 11, 26)


@dataclass(frozen=True)
class StageCode:
    """Calls per second of each step on one core, and of all of them for one certificate.

    ``rounds`` holds the certificates per second of each measurement when this
    is their mean (``mean_of``), so a reader sees how far they were apart.
    """

    rates: dict[str, float]
    rounds: tuple[float, ...] = ()

    @property
    def per_certificate(self) -> float:
        return 1 / sum(1 / rate for rate in self.rates.values())

    @classmethod
    def mean_of(cls, measured: list[StageCode]) -> StageCode:
        """Each step's mean rate over ``measured`` (the machine's speed drifts; one measure of it did too)."""
        names = list(measured[0].rates)
        rates = {name: sum(code.rates[name] for code in measured) / len(measured) for name in names}
        return cls(rates, tuple(code.per_certificate for code in measured))

    def lines(self) -> list[str]:
        steps = ", ".join(f"{name} {rate:,.0f}/s" for name, rate in self.rates.items())
        rounds = (
            f"; the mean of {' and '.join(f'{r:,.0f}' for r in self.rounds)}, before and after the run"
            if len(self.rounds) > 1
            else ""
        )
        return [
            f"stage code, one core            {self.per_certificate:,.0f} certificates/s  ({steps}{rounds})",
        ]


def rate(action: Callable[[int], Any], items: int, seconds: float) -> float:
    """Calls per second of ``action(i)`` over at least ``seconds`` of this thread's CPU (after a warm-up)."""
    for i in range(min(items, 50)):
        action(i)
    done, began = 0, time.thread_time()
    while (elapsed := time.thread_time() - began) < seconds:
        for _ in range(50):
            action(done % items)
            done += 1
    return done / elapsed


def measure(seconds: float = 1.0, vehicles: int = 200) -> StageCode:
    schema = IviSchema.load(CocSettings().xsd_path())
    samples = generate(vehicles, seed=7, defect_share=0.0)
    table = ApprovalTable.of(schema, samples.approvals)
    builds = samples.builds
    approvals = [table.get(b.approval.key) for b in builds]
    policy = RulePolicy()

    def render_one(i: int) -> bytes:
        approval = approvals[i]
        assert approval is not None
        return render(builds[i], approval, version_number=1, schema=schema)

    documents = [render_one(i) for i in range(len(builds))]
    dev = generate_dev_seal("rsa-2048")
    seal = Seal.from_pem(dev.key_pem, dev.cert_pem)
    sealed = [seal.sign(xml) for xml in documents[:50]]
    now = dt.datetime.now(dt.UTC)

    def archive_one(i: int) -> object:
        xml = sealed[i]
        document = Document(
            record_id=f"{builds[i].vin}:1",
            vin=builds[i].vin,
            revision=1,
            version_number=1,
            xml=xml.decode(),
            sha256=hashlib.sha256(xml).hexdigest(),
            signer_fingerprint=seal.fingerprint,
        )
        return receipt_for(document, None, now)

    return StageCode(
        {
            "validate": rate(lambda i: check(builds[i], table, policy, TODAY), len(builds), seconds),
            "render+check": rate(render_one, len(builds), seconds),
            "seal": rate(lambda i: seal.sign(documents[i]), len(documents), seconds),
            "archive receipt": rate(archive_one, len(sealed), seconds),
        }
    )
