"""``coc demo``: the main job, start to finish, on the local stack.

Stack up (Kafka, FerretDB, the eight services), sample approvals published over
HTTP as the type-approval team would, a few hundred sample builds published
straight to coc.builds.v1 as a factory MES would (``devkit.mes``), the pipeline
watched until it is at rest (``devkit.watch``), then the readiness table and a
folder of signed certificates, each verified.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.errors import FAILED, BadInput, CommandError

if TYPE_CHECKING:
    from deploy.local.settings import StackSettings

DEFAULT_OUT = "out/demo-DATE-TIME"


def register(coc: click.Group) -> None:
    coc.add_command(demo)


def say(line: str) -> None:
    print(line, flush=True)


@click.command(
    epilog="Exit status: 0 every exported certificate verified, 1 the stack or the pipeline failed "
    "(or a certificate did not verify), 2 bad command line."
)
@click.option("--vehicles", type=int, default=300, help="sample builds to publish")
@click.option(
    "--seed", type=int, help="seed of the sample data (default: a new one, so each run has new vehicles)"
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help=f"folder for samples/ and certificates/ (default: {DEFAULT_OUT}, a new one each run)",
)
@click.option("--timeout", type=float, default=600, help="seconds to wait for the pipeline to rest")
def demo(vehicles: int, seed: int | None, out: Path | None, timeout: float) -> int:
    """The whole pipeline on sample data, on the local stack.

    Starts the local stack (Kafka, FerretDB, the eight services), publishes sample
    approvals and builds, waits until the pipeline is at rest, prints the readiness
    of these vehicles and exports their signed certificates, each verified. The
    stack keeps running.
    """
    import asyncio
    import random

    from cli.client import OWNERS, Client, post_approvals, readiness_table
    from deploy.local import supervise
    from deploy.local.layout import StackError
    from deploy.local.services import service_specs
    from deploy.local.settings import StackSettings
    from devkit.samples import SampleError, generate, write
    from devkit.watch import NotSettled, readiness_of, worklists_of
    from shared.auth import Role

    settings = StackSettings()
    out = out or Path("out") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    say("== 1. the local stack")
    try:
        supervise.up(settings, extra_specs=service_specs(settings), out=say)
    except StackError as exc:
        raise CommandError(str(exc)) from None

    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 30)
    say(f"\n== 2. sample data ({vehicles} vehicles, seed {seed}) into {out}/samples")
    try:
        samples = generate(vehicles, seed, 0.2)
    except SampleError as exc:
        raise BadInput(str(exc)) from None
    write(samples, out / "samples")
    expected = {b.vin: b.revision for b in samples.builds}

    client = Client(settings)
    say(
        "\n== 3. plants and vehicle groups (compliance lead), approvals over HTTP (type-approval), "
        f"builds straight to Kafka (MES)\n{sample_names_known(settings, client.tokens.get(Role.VIEWER))}"
    )
    say(f"{post_approvals(client, json_list(samples.approvals))} approvals published")
    builds = with_multistage_vehicle(client, samples.builds, expected)  # and one completed vehicle
    try:
        settled, took = asyncio.run(publish_and_watch(settings, builds, expected, timeout))
    except NotSettled as exc:
        raise CommandError(f"{exc}\nsee `coc stack status` and {settings.state_dir}/logs") from None
    say(f"at rest {took:.1f}s after the first publish")
    readiness = readiness_of(settled.values())

    say("\n== 5. readiness of these vehicles")
    say(readiness_table(readiness, worklists_of(settled.values(), OWNERS)))
    everything = client.call("GET", f"{settings.status_url}/v1/readiness", Role.VIEWER).json()
    if everything["total"] > readiness["total"]:
        say(f"(the stack holds {everything['total']} vehicles in all: `coc readiness`)")

    say("\n== 6. signed certificates")
    folder = out / "certificates"
    exported, verified = export_and_verify(client, settings, sorted(expected), folder)
    say(
        f"{exported} certificates in {folder.resolve()}, {verified} valid against IVI 2.0 with a verified seal"
    )

    say("\n== 7. the workspace")
    users = asyncio.run(demo_users(settings))
    say(f"open {settings.url_of('workspace')}/ and sign in as one of these demo users (one per role):")
    for user in users:
        say(f"  {user.name:24} {user.role.value:16} password {user.password}")
    say(
        f"(kept in {settings.state_dir / 'demo-users.txt'}; add people with `coc users add NAME --role ROLE`)"
    )
    return 0 if exported == verified else FAILED


def json_list(items: Any) -> bytes:
    return json.dumps([item.model_dump(mode="json") for item in items]).encode()


def with_multistage_vehicle(client: Any, builds: Any, expected: dict[str, int]) -> tuple[Any, ...]:
    """A completed vehicle (stage 2) on a Ford Ranger chassis cab's certificate (stage 1): ``devkit.multistage``.

    The chassis cab's certificate is made and sealed as its manufacturer would (a seal
    of its own), imported into the archive as the body builder does, and the
    completed vehicle's build names it as its previous stage.
    """
    from cli.client import post_approvals
    from devkit.keys import generate_dev_seal
    from devkit.multistage import approvals, base_certificate, completed_build
    from services.signing.seal import Seal
    from shared.auth import Role
    from shared.contracts.builds import PreviousStage
    from shared.ivi import IviSchema

    post_approvals(client, json_list(approvals()))
    ford = generate_dev_seal()
    schema = IviSchema.load(client.settings.xsd_path())
    xml = base_certificate(Seal.from_pem(ford.key_pem, ford.cert_pem), schema)
    url = f"{client.settings.archive_url}/v1/base-certificates"
    answer = client.call("POST", url, Role.MES, headers={"Content-Type": "application/xml"}, content=xml)
    previous = PreviousStage.model_validate(answer.json()["previous_stage"])
    say(
        f"a multistage vehicle: base certificate {previous.reference_id} of chassis cab {previous.vin} "
        f"(stage 1, incomplete) imported; its completed vehicle (stage 2, record type V) goes with the builds"
    )
    completed = completed_build(previous)
    expected[completed.vin] = completed.revision
    return (*builds, completed)


def sample_names_known(settings: StackSettings, viewer: str | None) -> str:
    """The sample plants and vehicle groups made known as the compliance lead does, read by validation."""
    import asyncio

    from devkit.masterdata import make_known, sample_names
    from shared.contracts.masterdata import MasterKind

    if viewer is None:
        raise BadInput("no viewer token: set COC_TOKEN_VIEWER or run `coc stack up`")
    names = sample_names()
    try:
        asyncio.run(make_known(settings, settings.url_of("validation"), viewer, names))
    except TimeoutError as exc:
        raise CommandError(f"{exc}\nsee `coc stack status` and {settings.state_dir}/logs") from None
    groups, plants = len(names[MasterKind.VEHICLE_GROUP]), len(names[MasterKind.PLANT])
    return f"{groups} vehicle groups and {plants} plants known to validation"


async def demo_users(settings: StackSettings) -> list[Any]:
    """One demo user per workspace role, made once into the stack's database."""
    from devkit.users import ensure_demo_users
    from services.workspace.adapters.users import UserStore
    from services.workspace.app import USERS
    from shared.mongo import database, make_client

    client = make_client(settings)
    try:
        return await ensure_demo_users(UserStore(database(client, settings)[USERS]), settings.state_dir)
    finally:
        await client.close()


async def publish_and_watch(
    settings: StackSettings, builds: Any, expected: dict[str, int], timeout: float
) -> tuple[dict[str, dict[str, Any]], float]:
    """Publish as an MES, then wait until every VIN settled and the status service folded it all.

    Only this run's vehicles count: the stack may hold others from earlier runs.
    Returns their status records by VIN and the seconds it took.
    """
    import httpx

    from cli.progress import Progress
    from devkit.mes import publish_builds
    from devkit.watch import settle, watching
    from shared.auth import Role, load_tokens

    token = load_tokens(settings, dict(os.environ))[Role.VIEWER]
    began = time.monotonic()
    async with (
        httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http,
        watching(settings.kafka_bootstrap, expected, out=say) as watch,
    ):

        async def records(vins: list[str]) -> dict[str, dict[str, Any] | None]:
            found: dict[str, dict[str, Any] | None] = {}
            for vin in vins:
                response = await http.get(f"{settings.status_url}/v1/records/{vin}")
                found[vin] = response.json() if response.status_code == 200 else None
            return found

        with Progress("builds published") as shown:
            await publish_builds(settings.kafka_bootstrap, builds, shown)
        say("\n== 4. waiting for the pipeline to rest")
        settled = await settle(watch, expected, timeout, records, out=say)
        return settled, time.monotonic() - began


def export_and_verify(client: Any, settings: StackSettings, vins: list[str], folder: Path) -> tuple[int, int]:
    import httpx

    from deploy.local.services import service_env
    from shared.auth import Role
    from shared.xml import load_ivi_schema, parse_bytes, validate
    from shared.xmldsig import verify

    cert_pem = Path(service_env(settings)["COC_SEAL_CERT"]).read_bytes()
    schema = load_ivi_schema(settings.xsd_path())
    folder.mkdir(parents=True, exist_ok=True)
    exported = verified = 0
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {client.tokens[Role.VIEWER]}"}) as http:
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
