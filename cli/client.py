"""Commands that talk to a running pipeline: publish, status, readiness, export, and docs.

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

from cli.main import CommandError, short
from shared.auth import Role, load_tokens
from shared.settings import ServiceSettings

CHUNK = 200
WIDTH = 100  # the readiness table fits a terminal this wide
OWNERS = ("type-approval", "production", "compliance", "integration")


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

    docs = subparsers.add_parser("docs", help="the AsyncAPI document of every topic, from the code")
    docs.add_argument(
        "--out",
        default="out/asyncapi.json",
        help="output file, or - for standard output (default: out/asyncapi.json)",
    )
    docs.set_defaults(func=run_docs)


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
    """``what: done/total`` on standard error: redrawn in place on a terminal, a line each otherwise."""
    if sys.stderr.isatty():
        end = "\n" if done >= total else ""
        print(f"\r{what}: {done}/{total}", end=end, file=sys.stderr, flush=True)
    else:
        print(f"{what}: {done}/{total}", file=sys.stderr, flush=True)


def run_publish(args: argparse.Namespace) -> int:
    """Send a file as the team or the MES would; a file too large or not UTF-8 is refused before any is sent."""
    from cli.workbench import read_bytes, utf8

    data = read_bytes(args.file)
    if args.kind == "approvals":
        return publish_approvals(utf8(data, str(args.file)))
    numbered = enumerate(data.splitlines(), start=1)
    lines = [line for number, raw in numbered if (line := utf8(raw, f"{args.file} line {number}")).strip()]
    if args.kafka:
        publish_lines_to_kafka(lines, ServiceSettings())
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
    accepted = post_approvals(Client(), text.encode())
    print(f"{accepted} approvals published")
    return 0


def post_approvals(client: Client, body: bytes) -> int:
    """Approvals (a JSON list) to intake as the type-approval team posts them; how many it accepted."""
    response = client.call(
        "POST",
        f"{client.settings.intake_url}/v1/approvals",
        Role.TYPE_APPROVAL,
        content=body,
        headers={"Content-Type": "application/json"},
    )
    return len(response.json()["accepted"])


def publish_lines_to_kafka(lines: list[str], settings: ServiceSettings) -> None:
    """One message per line, key = VIN, exactly what a factory MES would send."""
    from devkit.mes import Message, publish

    messages = [Message.of_line(line) for line in lines]
    asyncio.run(
        publish(
            settings.kafka_bootstrap,
            messages,
            lambda done, total: progress(done, total, "builds published to Kafka"),
        )
    )


def run_status(args: argparse.Namespace) -> int:
    client = Client()
    record = client.call("GET", f"{client.settings.status_url}/v1/records/{args.vin}", Role.VIEWER).json()
    if args.json:
        print(json.dumps(record, indent=2, default=str))
        return 0
    print(f"{record['vin']}  revision {record['revision']}  {record['state']}  (stage {record['stage']})")
    delivery = record.get("delivery")
    if delivery:
        to = delivery.get("destination") or "its authority"
        who = f"; {delivery['owner']} must act" if delivery.get("owner") else ""
        why = f" ({delivery['reason']})" if delivery.get("reason") else ""
        print(f"  delivery to {to}: {delivery['state']}{why}{who}")
    for finding in record.get("findings", []):
        print(f"  {finding['severity']:7} {finding['owner']:13} {finding['code']}: {finding['message']}")
    for event in record.get("timeline", []):
        reason = f"  {short(str(event['reason']), 120)}" if event.get("reason") else ""
        print(f"  {event['time']}  {event['stage']:10} {event['state']}{reason}")
    return 0


def run_readiness(args: argparse.Namespace) -> int:
    client = Client()
    readiness = client.call("GET", f"{client.settings.status_url}/v1/readiness", Role.VIEWER).json()
    worklists = {owner: oldest_waiting(client, owner) for owner in OWNERS}
    if args.json:
        print(json.dumps({"readiness": readiness, "worklists": worklists}, indent=2, default=str))
        return 0
    print(readiness_table(readiness, worklists))
    return 0


def oldest_waiting(client: Client, owner: str, pages: int = 5, size: int = 200) -> dict[str, Any]:
    """The oldest records waiting for ``owner`` (up to ``pages`` pages) and how many wait in all."""
    items: list[dict[str, Any]] = []
    total = 0
    for page in range(1, pages + 1):
        params = {"owner": owner, "page": page, "size": size}
        found = client.call(
            "GET", f"{client.settings.status_url}/v1/worklist", Role.VIEWER, params=params
        ).json()
        items.extend(found["items"])
        total = int(found.get("total", len(items)))
        if len(items) >= total or not found["items"]:
            break
    return {"owner": owner, "items": items, "total": total}


def readiness_table(readiness: dict[str, Any], worklists: dict[str, Any]) -> str:
    """Vehicles per state (rows, only states that occur) and vehicle group; open findings per team.

    At most WIDTH columns: groups that do not fit are summed in a column ``+N more``,
    finding codes that do not fit are counted as ``+N more``.
    """
    states = [state for state, n in readiness["by_state"].items() if n]
    groups = sorted(readiness["by_group"], key=lambda g: -sum(readiness["by_group"][g].values()))
    name_width = max([len(s) for s in states] + [5]) + 2
    columns: list[tuple[str, dict[str, int]]] = [("all", readiness["by_state"])]
    used = name_width + 8
    for number, group in enumerate(groups):
        width = max(len(group), 5) + 2
        rest = groups[number:]
        if used + width + (12 if len(rest) > 1 else 0) > WIDTH:
            others: dict[str, int] = {}
            for name in rest:
                for state, n in readiness["by_group"][name].items():
                    others[state] = others.get(state, 0) + n
            columns.append((f"+{len(rest)} more", others))
            break
        columns.append((group, readiness["by_group"][group]))
        used += width
    widths = [max(len(title), 5) + 2 for title, _ in columns]
    lines = [f"{readiness['total']} vehicles, per state and vehicle group", ""]
    if readiness.get("events_behind"):
        lines[1:1] = [f"catching up: {readiness['events_behind']:,} status events not counted yet"]
    lines.append(
        f"{'state':{name_width}}" + "".join(f"{t:>{w}}" for (t, _), w in zip(columns, widths, strict=True))
    )
    for state in states:
        cells = "".join(
            f"{counts.get(state, 0):>{w}}" for (_, counts), w in zip(columns, widths, strict=True)
        )
        lines.append(f"{state:{name_width}}" + cells)
    lines.append("")
    for owner, worklist in worklists.items():
        items = worklist.get("items", worklist) if isinstance(worklist, dict) else worklist
        total = worklist.get("total", len(items)) if isinstance(worklist, dict) else len(items)
        lines.append(worklist_line(owner, items, total))
    return "\n".join(lines)


def worklist_line(owner: str, items: list[dict[str, Any]], total: int | None = None) -> str:
    """``owner  N open  CODE n, CODE n, +K more``: the most frequent codes that fit in WIDTH.

    When only the oldest of ``total`` waiting records were fetched, the codes are counted
    over those and the line says so.
    """
    by_code: dict[str, int] = {}
    for item in items:
        for finding in item.get("findings", []):
            by_code[finding["code"]] = by_code.get(finding["code"], 0) + 1
    ranked = sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))
    total = len(items) if total is None else total
    line = f"{owner:14} {total:5} open "
    if total > len(items):
        line = f"{line} (codes of the oldest {len(items)})"
    for shown, (code, n) in enumerate(ranked):
        more = len(ranked) - shown - 1
        part = f" {code} {n}" + ("," if more else "")
        if len(line) + len(part) + (10 if more else 0) > WIDTH:
            return f"{line} +{len(ranked) - shown} more"
        line += part
    return line.rstrip()


def run_export(args: argparse.Namespace) -> int:
    client = Client()
    suffix = f"/{args.revision}" if args.revision else ""
    response = client.call(
        "GET", f"{client.settings.archive_url}/v1/certificates/{args.vin}{suffix}", Role.VIEWER
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(response.content)
    print(
        f"wrote {args.out} (revision {response.headers.get('X-Coc-Revision')}, sha256 {response.headers.get('X-Coc-Sha256')})"
    )
    return 0


def run_docs(args: argparse.Namespace) -> int:
    from cli.service import asyncapi_document

    text = json.dumps(asyncapi_document(), indent=2, sort_keys=True)
    if args.out == "-":
        print(text)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"wrote {out}")
    return 0
