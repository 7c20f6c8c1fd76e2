"""Commands that talk to a running pipeline: publish, status, readiness, export.

They find the service addresses in settings and the bearer tokens the local
stack generated (``<state_dir>/tokens.env``), so a user copies nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from shared import topics
from shared.auth import Role, load_tokens
from shared.cli import CommandError
from shared.settings import ServiceSettings

CHUNK = 200


def register(subparsers: Any) -> None:
    publish = subparsers.add_parser("publish", help="send approvals or builds to the pipeline")
    publish.add_argument("kind", choices=("approvals", "builds"))
    publish.add_argument("file", type=Path, help="approvals.json (a list) or builds.jsonl (one a line)")
    publish.add_argument(
        "--kafka", action="store_true", help="builds: publish straight to coc.builds.v1 as an MES does"
    )
    publish.set_defaults(func=run_publish)

    status = subparsers.add_parser("status", help="where one vehicle stands")
    status.add_argument("vin")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)

    readiness = subparsers.add_parser("readiness", help="counts per state and vehicle group, open findings")
    readiness.add_argument("--json", action="store_true")
    readiness.set_defaults(func=run_readiness)

    export = subparsers.add_parser("export", help="a vehicle's signed certificate, exactly as archived")
    export.add_argument("vin")
    export.add_argument("--revision", type=int)
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(func=run_export)


class Client:
    """HTTP to the services with the right bearer token, errors turned into one-line messages."""

    def __init__(self, settings: ServiceSettings | None = None) -> None:
        self.settings = settings or ServiceSettings()
        self.tokens = load_tokens(self.settings, dict(os.environ))
        self.http = httpx.Client(timeout=60)

    def call(
        self, method: str, url: str, role: Role, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        token = self.tokens.get(role) or self.tokens.get(Role.VIEWER)
        if token is None:
            raise CommandError(f"no token for {role.value}: set COC_TOKEN_{role.name} or run `coc stack up`")
        try:
            headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
            response = self.http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise CommandError(
                f"{url} does not answer ({exc}); is the stack up (`coc stack status`)?"
            ) from None
        if response.status_code >= 400:
            raise CommandError(f"{method} {url}: {response.status_code} {detail(response)}")
        return response


def detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return json.dumps(body.get("detail", body))[:2000]


def progress(done: int, total: int, what: str) -> None:
    end = "\n" if done >= total else ""
    print(f"\r{what}: {done}/{total}", end=end, file=sys.stderr, flush=True)


def run_publish(args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text()
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    if args.kind == "approvals":
        return publish_approvals(text)
    lines = [line for line in text.splitlines() if line.strip()]
    if args.kafka:
        asyncio.run(publish_builds_to_kafka(lines, ServiceSettings()))
        return 0
    client = Client()
    for start in range(0, len(lines), CHUNK):
        body = "\n".join(lines[start : start + CHUNK]).encode()
        client.call(
            "POST",
            f"{client.settings.intake_url}/v1/builds",
            Role.MES,
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        progress(min(start + CHUNK, len(lines)), len(lines), "builds published")
    return 0


def publish_approvals(text: str) -> int:
    client = Client()
    response = client.call(
        "POST",
        f"{client.settings.intake_url}/v1/approvals",
        Role.TYPE_APPROVAL,
        content=text.encode(),
        headers={"Content-Type": "application/json"},
    )
    print(f"{len(response.json()['accepted'])} approvals published")
    return 0


async def publish_builds_to_kafka(lines: list[str], settings: ServiceSettings) -> None:
    """One message per build, key = VIN, exactly what a factory MES would send."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for start in range(0, len(lines), CHUNK):
            sends = [
                await producer.send(topics.BUILDS, line.encode(), key=vin_of(line).encode())
                for line in lines[start : start + CHUNK]
            ]
            await asyncio.gather(*sends)
            progress(min(start + CHUNK, len(lines)), len(lines), "builds published to Kafka")
    finally:
        await producer.stop()


def vin_of(line: str) -> str:
    try:
        vin = json.loads(line).get("vin")
    except (ValueError, AttributeError):
        return ""
    return vin.upper() if isinstance(vin, str) else ""


def run_status(args: argparse.Namespace) -> int:
    client = Client()
    record = client.call("GET", f"{client.settings.status_url}/v1/records/{args.vin}", Role.VIEWER).json()
    if args.json:
        print(json.dumps(record, indent=2, default=str))
        return 0
    print(f"{record['_id']}  revision {record['revision']}  {record['state']}  (stage {record['stage']})")
    for finding in record.get("findings", []):
        print(f"  {finding['severity']:7} {finding['owner']:13} {finding['code']}: {finding['message']}")
    for event in record.get("timeline", []):
        print(f"  {event['time']}  {event['stage']:10} {event['state']}")
    return 0


def run_readiness(args: argparse.Namespace) -> int:
    client = Client()
    readiness = client.call("GET", f"{client.settings.status_url}/v1/readiness", Role.VIEWER).json()
    worklists = {
        owner: client.call(
            "GET", f"{client.settings.status_url}/v1/worklist", Role.VIEWER, params={"owner": owner}
        ).json()
        for owner in ("type-approval", "production", "compliance", "integration")
    }
    if args.json:
        print(json.dumps({"readiness": readiness, "worklists": worklists}, indent=2, default=str))
        return 0
    print(readiness_table(readiness, worklists))
    return 0


def readiness_table(readiness: dict[str, Any], worklists: dict[str, Any]) -> str:
    states = sorted(readiness["by_state"])
    lines = [
        f"{readiness['total']} vehicles",
        "",
        f"{'vehicle group':24}" + "".join(f"{s:>14}" for s in states),
    ]
    for group, counts in sorted(readiness["by_group"].items()):
        lines.append(f"{group:24}" + "".join(f"{counts.get(s, 0):>14}" for s in states))
    lines.append(f"{'all':24}" + "".join(f"{readiness['by_state'][s]:>14}" for s in states))
    lines.append("")
    for owner, worklist in worklists.items():
        items = worklist.get("items", worklist) if isinstance(worklist, dict) else worklist
        by_code: dict[str, int] = {}
        for item in items:
            for finding in item.get("findings", []):
                by_code[finding["code"]] = by_code.get(finding["code"], 0) + 1
        top = ", ".join(f"{code} {n}" for code, n in sorted(by_code.items(), key=lambda kv: -kv[1])[:5])
        lines.append(f"{owner:14} {len(items):5} open  {top}")
    return "\n".join(lines)


def run_export(args: argparse.Namespace) -> int:
    client = Client()
    suffix = f"/{args.revision}" if args.revision else ""
    response = client.call(
        "GET", f"{client.settings.archive_url}/v1/certificates/{args.vin}{suffix}", Role.VIEWER
    )
    args.out.write_bytes(response.content)
    print(
        f"wrote {args.out} (revision {response.headers.get('X-Coc-Revision')}, sha256 {response.headers.get('X-Coc-Sha256')})"
    )
    return 0
