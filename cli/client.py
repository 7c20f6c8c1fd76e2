"""Commands that talk to a running pipeline: publish, status, readiness, export, and docs.

They find the service addresses in settings and the bearer tokens the local
stack generated (``<state_dir>/tokens.env``), so a user copies nothing. httpx,
the settings and the tokens are loaded inside the commands.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.errors import EXIT_STATUS, BadInput, CommandError, short
from cli.inputs import read_bytes, utf8, write_file
from cli.progress import Progress

if TYPE_CHECKING:
    import httpx

    from shared.auth import Role
    from shared.settings import ServiceSettings

CHUNK = 200
WIDTH = 100  # the readiness table fits a terminal this wide
OWNERS = ("type-approval", "production", "compliance", "integration")
json_option = click.option("--json", "as_json", is_flag=True, help="the answer as JSON")


def register(coc: click.Group) -> None:
    for command in (publish, status, readiness, export, docs):
        coc.add_command(command)


class Client:
    """HTTP to the services with the right bearer token, errors turned into one-line messages."""

    def __init__(self, settings: ServiceSettings | None = None) -> None:
        from shared.auth import load_tokens
        from shared.settings import ServiceSettings

        self.settings = settings or ServiceSettings()
        self.tokens = load_tokens(self.settings, dict(os.environ))
        self.http = http_client()

    def call(
        self, method: str, url: str, role: Role, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        import httpx

        from shared.auth import Role

        token = self.tokens.get(role) or self.tokens.get(Role.VIEWER)
        if token is None:
            raise BadInput(f"no token for {role.value}: set COC_TOKEN_{role.name} or run `coc stack up`")
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


def http_client() -> httpx.Client:
    import httpx

    return httpx.Client(timeout=60)


def detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return json.dumps(body.get("detail", body))[:2000]


@click.command(epilog=EXIT_STATUS)
@click.argument("kind", type=click.Choice(("approvals", "builds")))
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--kafka", is_flag=True, help="builds: publish straight to coc.builds.v1 as an MES does")
def publish(kind: str, file: Path, kafka: bool) -> None:
    """Send approvals or builds to the pipeline.

    As the type-approval team or the MES would. FILE is approvals.json (a list) or builds.jsonl (one build a line). A file
    too large or not UTF-8 is refused before any of it is sent.
    """
    from shared.auth import Role

    data = read_bytes(file)
    if kind == "approvals":
        accepted = post_approvals(Client(), utf8(data, str(file)).encode())
        print(f"{accepted} approvals published")
        return
    numbered = enumerate(data.splitlines(), start=1)
    lines = [line for number, raw in numbered if (line := utf8(raw, f"{file} line {number}")).strip()]
    if kafka:
        publish_lines_to_kafka(lines)
        return
    client = Client()
    with Progress("builds published") as shown:
        for start in range(0, len(lines), CHUNK):
            body = "\n".join(lines[start : start + CHUNK]).encode()
            client.call(
                "POST",
                f"{client.settings.intake_url}/v1/builds",
                Role.MES,
                content=body,
                headers={"Content-Type": "application/x-ndjson"},
            )
            shown(min(start + CHUNK, len(lines)), len(lines))


def post_approvals(client: Client, body: bytes) -> int:
    """Approvals (a JSON list) to intake as the type-approval team posts them; how many it accepted."""
    from shared.auth import Role

    response = client.call(
        "POST",
        f"{client.settings.intake_url}/v1/approvals",
        Role.TYPE_APPROVAL,
        content=body,
        headers={"Content-Type": "application/json"},
    )
    return len(response.json()["accepted"])


def publish_lines_to_kafka(lines: list[str]) -> None:
    """One message per line, key = VIN, exactly what a factory MES would send."""
    import asyncio

    from devkit.mes import Message
    from devkit.mes import publish as publish_messages
    from shared.settings import ServiceSettings

    messages = [Message.of_line(line) for line in lines]
    with Progress("builds published to Kafka") as shown:
        asyncio.run(publish_messages(ServiceSettings().kafka_bootstrap, messages, shown))


@click.command(epilog=EXIT_STATUS)
@click.argument("vin")
@json_option
def status(vin: str, as_json: bool) -> None:
    """Where one vehicle stands: state, delivery, findings, timeline."""
    from cli.output import show_json
    from shared.auth import Role

    client = Client()
    record = client.call("GET", f"{client.settings.status_url}/v1/records/{vin}", Role.VIEWER).json()
    if as_json:
        show_json(record)
        return
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


@click.command(epilog=EXIT_STATUS)
@json_option
def readiness(as_json: bool) -> None:
    """Vehicles per state and group, and each team's open findings."""
    from cli.output import show_json
    from shared.auth import Role

    client = Client()
    counts = client.call("GET", f"{client.settings.status_url}/v1/readiness", Role.VIEWER).json()
    worklists = {owner: oldest_waiting(client, owner) for owner in OWNERS}
    if as_json:
        show_json({"readiness": counts, "worklists": worklists})
        return
    print(readiness_table(counts, worklists))


def oldest_waiting(client: Client, owner: str, pages: int = 5, size: int = 200) -> dict[str, Any]:
    """The oldest records waiting for ``owner`` (up to ``pages`` pages) and how many wait in all."""
    from shared.auth import Role

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


def readiness_table(counts: dict[str, Any], worklists: dict[str, Any]) -> str:
    """Vehicles per state (rows, only states that occur) and vehicle group; open findings per team.

    At most WIDTH columns: groups that do not fit are summed in a column ``+N more``,
    finding codes that do not fit are counted as ``+N more``.
    """
    from cli.output import render, rows, table

    states = [state for state, n in counts["by_state"].items() if n]
    columns = group_columns(counts, name_width=max([len(s) for s in states] + [5]) + 2)
    titles = [title for title, _ in columns]
    grid = rows(
        table("state", *titles, right=titles),
        ([state, *(column.get(state, 0) for _, column in columns)] for state in states),
    )
    lines = [f"{counts['total']} vehicles, per state and vehicle group", ""]
    if counts.get("events_behind"):
        lines[1:1] = [f"catching up: {counts['events_behind']:,} status events not counted yet"]
    lines += [render(grid, WIDTH), ""]
    for owner, worklist in worklists.items():
        items = worklist.get("items", worklist) if isinstance(worklist, dict) else worklist
        total = worklist.get("total", len(items)) if isinstance(worklist, dict) else len(items)
        lines.append(worklist_line(owner, items, total))
    return "\n".join(lines)


def group_columns(counts: dict[str, Any], name_width: int) -> list[tuple[str, dict[str, int]]]:
    """``all``, then the vehicle groups, largest first, as many as fit in WIDTH; the rest summed."""
    by_group: dict[str, dict[str, int]] = counts["by_group"]
    groups = sorted(by_group, key=lambda g: -sum(by_group[g].values()))
    columns: list[tuple[str, dict[str, int]]] = [("all", counts["by_state"])]
    used = name_width + 8
    for number, group in enumerate(groups):
        width = max(len(group), len(str(max(by_group[group].values(), default=0))), 5) + 2
        rest = groups[number:]
        if used + width + (12 if len(rest) > 1 else 0) > WIDTH:
            others: dict[str, int] = {}
            for name in rest:
                for state, n in by_group[name].items():
                    others[state] = others.get(state, 0) + n
            columns.append((f"+{len(rest)} more", others))
            break
        columns.append((group, by_group[group]))
        used += width
    return columns


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


@click.command(epilog=EXIT_STATUS)
@click.argument("vin")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="the file to write it to")
@click.option("--revision", type=int, help="one revision (default: the current one)")
def export(vin: str, out: Path, revision: int | None) -> None:
    """A vehicle's signed certificate, exactly as archived."""
    from shared.auth import Role

    client = Client()
    suffix = f"/{revision}" if revision else ""
    response = client.call("GET", f"{client.settings.archive_url}/v1/certificates/{vin}{suffix}", Role.VIEWER)
    write_file(out, response.content)
    print(
        f"wrote {out} (revision {response.headers.get('X-Coc-Revision')}, "
        f"sha256 {response.headers.get('X-Coc-Sha256')})"
    )


@click.command(epilog=EXIT_STATUS)
@click.option("--out", default="out/asyncapi.json", help="output file, or - for standard output")
def docs(out: str) -> None:
    """The AsyncAPI document of every topic, from the code."""
    from services.launch import asyncapi_document

    text = json.dumps(asyncapi_document(), indent=2, sort_keys=True)
    if out == "-":
        print(text)
        return
    write_file(Path(out), (text + "\n").encode())
    print(f"wrote {out}")
