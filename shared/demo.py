"""``coc demo``: the main job, start to finish, on the local stack.

Stack up (Kafka, FerretDB, the six services), sample approvals published over
HTTP as the type-approval team would, a few hundred sample builds published
straight to coc.builds.v1 as a factory MES would, the pipeline run to rest,
then the readiness table and a folder of signed certificates, each verified.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from shared.cli import CommandError
from shared.settings import ServiceSettings

IN_FLIGHT = ("received", "validated", "rendered", "signed")


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="the whole pipeline on sample data, on the local stack")
    demo.add_argument("--vehicles", type=int, default=300)
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--out", type=Path, help="folder for samples and certificates (default: out/demo)")
    demo.add_argument("--timeout", type=float, default=600, help="seconds to wait for the pipeline to rest")
    demo.set_defaults(func=run_demo)


def say(line: str) -> None:
    print(line, flush=True)


def run_demo(args: argparse.Namespace) -> int:
    from services.intake.samples import generate, write
    from shared import stack
    from shared.client_commands import Client, publish_builds_to_kafka, readiness_table
    from shared.stack_services import service_specs

    settings = ServiceSettings()
    out = args.out or Path("out") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    say("== 1. the local stack")
    try:
        stack.up(settings, extra_specs=service_specs(settings), out=say)
    except stack.StackError as exc:
        raise CommandError(str(exc)) from None

    say(f"\n== 2. sample data ({args.vehicles} vehicles, seed {args.seed}) into {out}/samples")
    samples = generate(args.vehicles, args.seed, 0.2)
    write(samples, out / "samples")
    vins = sorted({b.vin for b in samples.builds})

    say("\n== 3. approvals over HTTP (type-approval), builds straight to Kafka (MES)")
    client = Client(settings)
    body = json.dumps([a.model_dump(mode="json") for a in samples.approvals]).encode()
    client.call(
        "POST",
        f"{settings.intake_url}/v1/approvals",
        _role("type-approval"),
        content=body,
        headers={"Content-Type": "application/json"},
    )
    say(f"{len(samples.approvals)} approvals published")
    began = time.monotonic()
    asyncio.run(publish_builds_to_kafka([b.model_dump_json() for b in samples.builds], settings))

    say("\n== 4. waiting for the pipeline to rest")
    readiness = wait_for_rest(client, settings, vins, args.timeout)
    say(f"at rest after {time.monotonic() - began:.1f}s")

    say("\n== 5. readiness")
    worklists = {
        owner: client.call(
            "GET", f"{settings.status_url}/v1/worklist", _role("viewer"), params={"owner": owner}
        ).json()
        for owner in ("type-approval", "production", "compliance", "integration")
    }
    say(readiness_table(readiness, worklists))

    say("\n== 6. signed certificates")
    folder = out / "certificates"
    exported, verified = export_and_verify(client, settings, vins, folder)
    say(
        f"{exported} certificates in {folder.resolve()}, {verified} valid against IVI 2.0 with a verified seal"
    )
    return 0 if exported == verified else 1


def _role(name: str) -> Any:
    from shared.auth import Role

    return Role(name)


def wait_for_rest(client: Any, settings: ServiceSettings, vins: list[str], timeout: float) -> dict[str, Any]:
    """Poll readiness until every sample VIN has a record and none is in flight."""
    deadline = time.monotonic() + timeout
    while True:
        readiness: dict[str, Any] = client.call(
            "GET", f"{settings.status_url}/v1/readiness", _role("viewer")
        ).json()
        by_state = readiness["by_state"]
        moving = sum(by_state.get(state, 0) for state in IN_FLIGHT)
        settled = readiness["total"] - moving
        print(
            f"\r{settled}/{len(vins)} vehicles settled, {moving} in flight",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if moving == 0 and readiness["total"] >= len(vins):
            print(file=sys.stderr)
            return readiness
        if time.monotonic() > deadline:
            raise CommandError(
                f"the pipeline did not rest within {timeout:.0f}s; see `coc stack status` and .state/logs"
            )
        time.sleep(2)


def export_and_verify(
    client: Any, settings: ServiceSettings, vins: list[str], folder: Path
) -> tuple[int, int]:
    import httpx

    from services.signing.seal import verify
    from shared.stack_services import service_env
    from shared.xml import load_ivi_schema, parse_bytes, validate

    cert_pem = Path(service_env(settings)["COC_SEAL_CERT"]).read_bytes()
    schema = load_ivi_schema(settings.xsd_path())
    folder.mkdir(parents=True, exist_ok=True)
    exported = verified = 0
    with httpx.Client(
        timeout=30, headers={"Authorization": f"Bearer {client.tokens[_role('viewer')]}"}
    ) as http:
        for vin in vins:
            response = http.get(f"{settings.archive_url}/v1/certificates/{vin}")
            if response.status_code == 404:
                continue
            response.raise_for_status()
            data = response.content
            (folder / f"{vin}.xml").write_bytes(data)
            exported += 1
            if not validate(schema, parse_bytes(data)) and verify(data, cert_pem).valid:
                verified += 1
    return exported, verified
