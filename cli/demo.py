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
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared.cli import CommandError
from shared.contracts.events import State
from shared.settings import ServiceSettings

IN_FLIGHT = ("received", "validated", "rendered", "signed")


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="the whole pipeline on sample data, on the local stack")
    demo.add_argument("--vehicles", type=int, default=300)
    demo.add_argument(
        "--seed", type=int, help="seed of the sample data (default: a new one, so each run has new vehicles)"
    )
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

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    say(f"\n== 2. sample data ({args.vehicles} vehicles, seed {seed}) into {out}/samples")
    samples = generate(args.vehicles, seed, 0.2)
    write(samples, out / "samples")
    expected = {b.vin: b.revision for b in samples.builds}
    vins = sorted(expected)

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
    records = wait_for_rest(client, settings, expected, args.timeout)
    say(f"at rest after {time.monotonic() - began:.1f}s")

    say("\n== 5. readiness of these vehicles")
    worklists = {
        owner: [
            item
            for item in client.call(
                "GET", f"{settings.status_url}/v1/worklist", _role("viewer"), params={"owner": owner}
            ).json()["items"]
            if item["vin"] in expected
        ]
        for owner in ("type-approval", "production", "compliance", "integration")
    }
    say(readiness_table(readiness_of(records.values()), worklists))
    everything = client.call("GET", f"{settings.status_url}/v1/readiness", _role("viewer")).json()
    if everything["total"] > len(records):
        say(f"(the stack holds {everything['total']} vehicles in all: `coc readiness`)")

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


def wait_for_rest(
    client: Any, settings: ServiceSettings, expected: dict[str, int], timeout: float
) -> dict[str, dict[str, Any]]:
    """Poll the status records of these VINs until each shows its revision in a state that stays.

    Only this run's vehicles count: the stack may hold others from earlier runs.
    Returns the records by VIN.
    """
    deadline = time.monotonic() + timeout
    settled: dict[str, dict[str, Any]] = {}
    viewer = {"Authorization": f"Bearer {client.tokens[_role('viewer')]}"}
    while True:
        moving = 0
        for vin in sorted(set(expected) - set(settled)):
            # Not client.call: a VIN the status service has not heard of yet (404) is normal here.
            response = client.http.get(f"{settings.status_url}/v1/records/{vin}", headers=viewer)
            if response.status_code == 404:
                continue
            if response.status_code >= 400:
                raise CommandError(f"GET /v1/records/{vin}: {response.status_code} {response.text[:300]}")
            record = response.json()
            if record["revision"] == expected[vin] and record["state"] not in IN_FLIGHT:
                settled[vin] = record
            else:
                moving += 1
        print(
            f"\r{len(settled)}/{len(expected)} vehicles settled, {moving} in flight",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if len(settled) == len(expected):
            print(file=sys.stderr)
            return settled
        if time.monotonic() > deadline:
            print(file=sys.stderr)
            raise CommandError(
                f"{len(expected) - len(settled)} vehicles did not settle within {timeout:.0f}s; "
                "see `coc stack status` and .state/logs"
            )
        time.sleep(2)


def readiness_of(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts per state and per vehicle group and state, shaped as GET /v1/readiness answers."""
    by_state: dict[str, int] = {state.value: 0 for state in State}
    by_group: dict[str, dict[str, int]] = {}
    for record in records:
        state, group = record["state"], record.get("vehicle_group") or "unknown"
        by_state[state] = by_state.get(state, 0) + 1
        counts = by_group.setdefault(group, {})
        counts[state] = counts.get(state, 0) + 1
    return {"total": sum(by_state.values()), "by_state": by_state, "by_group": by_group}


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
