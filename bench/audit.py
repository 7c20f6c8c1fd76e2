"""The audit's rate on one core: archived certificates re-checked per second.

    python -m bench.audit [--certificates N] [--seconds S]

What ``coc audit`` does per certificate, in this one process and thread, with
no database between: the SHA-256 of its bytes, the official schema, the seal
(our verifier; signxml's second opinion is left out of the audit), the trusted
signer and the evidence. The baseline, measured in the same run, is lxml
parsing and schema-validating the same documents alone: the floor any audit
that checks the schema pays. The target of issue 14 is 500 certificates/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
from typing import Any

from bench.stagecode import rate
from devkit.keys import generate_dev_seal
from devkit.samples import generate
from services.archive.audit import Auditor
from services.archive.stored_xml import packed, xml_of
from services.render.document import render
from services.signing.seal import Seal
from services.validation.rules import ApprovalTable
from shared.contracts.approvals import master_data_sha256
from shared.ivi import IviSchema
from shared.settings import CocSettings
from shared.xml import load_ivi_schema, parse_bytes, validate

TARGET = 500.0


def rows(certificates: int) -> tuple[list[dict[str, Any]], Any, dict[str, str]]:
    """Archive rows of ``certificates`` sealed sample certificates, with their evidence."""
    schema = IviSchema.load(CocSettings().xsd_path())
    samples = generate(certificates, seed=11, defect_share=0.0)
    table = ApprovalTable.of(schema, samples.approvals)
    dev = generate_dev_seal("rsa-2048")
    seal = Seal.from_pem(dev.key_pem, dev.cert_pem)
    made, approvals = [], {}
    for build in samples.builds:
        approval = table.get(build.approval.key)
        assert approval is not None
        xml = seal.sign(render(build, approval, version_number=1, schema=schema))
        approval_sha = master_data_sha256(approval)
        approvals[approval_sha] = approval_sha
        made.append(
            {
                "_id": f"{build.vin}:1",
                "vin": build.vin,
                "revision": 1,
                "version_number": 1,
                "sha256": hashlib.sha256(xml).hexdigest(),
                "previous_sha256": None,
                **packed(xml),
                "archived_at": dt.datetime.now(dt.UTC),
                "evidence": {
                    "build": build.model_dump(mode="json"),
                    "approval_sha256": approval_sha,
                    "approval_key": approval.key,
                },
            }
        )
    return made, dev.certificate, approvals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--certificates", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    archived, certificate, approvals = rows(args.certificates)
    schema = load_ivi_schema(CocSettings().xsd_path())
    auditor = Auditor(schema, [certificate], approvals.get)
    assert all(auditor.certificate(row) == [] for row in archived), "a sample certificate does not pass"
    documents = [xml_of(row) for row in archived]
    audit_rate = rate(lambda i: auditor.certificate(archived[i]), len(archived), args.seconds)
    schema_rate = rate(lambda i: validate(schema, parse_bytes(documents[i])), len(documents), args.seconds)
    print(f"audit, one core                 {audit_rate:,.0f} certificates/s  (target {TARGET:,.0f}/s)")
    print(
        f"baseline: parse + schema only   {schema_rate:,.0f} documents/s  (audit / baseline {audit_rate / schema_rate:.2f})"
    )


if __name__ == "__main__":
    main()
