"""The re-issue rate: certificates corrected per second end to end after an approval correction, beside fresh builds.

    python -m bench.reissue [--vehicles N] [--seed S] [--timeout SECONDS]

Against the running stack (``COC_`` settings, else ``coc stack up``'s defaults):
N clean sample builds, each bound to an approval version of this run only, are
published and timed until archived (the baseline: fresh builds). Then every one
of those approvals is corrected (posted again with another value) and re-issued
as the workspace does it (``services.workspace.reissue``: a job per approval in
the stack's database, planned from the archive's list, its records published to
coc.builds.v1 in batches), timed from the jobs' start until every VIN's
correction (revision 2) is archived, the stack's workspace stopped meanwhile (its worker would
take the jobs over). Printed: both rates, in certificates per second.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx
from pydantic import BaseModel

from bench.pipeline import held, known_sample_names, post_approvals
from bench.resources import stack_processes
from devkit.mes import fresh_tag, progress_lines, publish_builds, retag_all
from devkit.samples import generate
from devkit.watch import say, watching
from services.workspace.adapters.pipeline import PipelineApi, PipelineUnavailable
from services.workspace.reissue.plan import Job, job_time, new_job_id
from services.workspace.reissue.store import JobStore
from services.workspace.reissue.worker import Worker
from shared.auth import Role, load_tokens
from shared.contracts import Approval
from shared.contracts.approvals import master_data_sha256
from shared.mongo import database, make_client
from shared.settings import ServiceSettings


class KafkaSender:
    """The worker's sender as a plain producer (the workspace uses its stage's emitter)."""

    def __init__(self, bootstrap: str) -> None:
        from aiokafka import AIOKafkaProducer

        from shared.kafka import options_for

        self.producer = AIOKafkaProducer(**options_for(bootstrap), acks="all", enable_idempotence=True)

    async def send(self, topic: str, model: BaseModel, *, key: str, correlation_id: str) -> None:
        await self.producer.send(topic, model.model_dump_json().encode(), key=key.encode())


async def post(settings: ServiceSettings, approvals: Sequence[Approval]) -> None:
    token = load_tokens(settings, dict(os.environ))[Role.TYPE_APPROVAL]
    async with httpx.AsyncClient(timeout=60) as http:
        body = "[" + ",".join(a.model_dump_json() for a in approvals) + "]"
        answer = await http.post(
            f"{settings.intake_url}/v1/approvals",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    if answer.status_code != 202:
        raise SystemExit(f"POST /v1/approvals: {answer.status_code} {answer.text[:300]}")


async def timed(
    settings: ServiceSettings, expected: dict[str, int], timeout: float, start: Callable[[], Awaitable[None]]
) -> float:
    """Seconds from calling ``start`` until every VIN in ``expected`` settled (the same measure for both runs)."""
    async with watching(settings.kafka_bootstrap, expected) as watch:
        began = time.monotonic()
        await start()
        await watch.wait(lambda w: not w.unsettled(expected), timeout, "archived")
        return time.monotonic() - began


async def patiently(worker: Worker, job: Job) -> Job:
    """The job finished as the workspace's worker loop does it: a service that did not answer is asked again."""
    while True:
        try:
            return await worker.finish(job)
        except PipelineUnavailable as exc:
            say(f"{job.id}: {exc}; going on from the job's document")
            await asyncio.sleep(2)
            found = await worker.store.get(job.id)
            assert found is not None
            job = found


async def run(vehicles: int, seed: int, timeout: float) -> None:
    settings = ServiceSettings()
    rng = random.Random(seed)
    tag = fresh_tag(rng)
    say(f"{await post_approvals(settings)} sample approvals posted")
    await known_sample_names(settings)
    samples = generate(vehicles, seed, 0.0)
    own = {a.key: a.model_copy(update={"version": f"{a.version}-B{tag}"[:100]}) for a in samples.approvals}
    builds = [
        b.model_copy(
            update={"approval": b.approval.model_copy(update={"version": own[b.approval.key].version})}
        )
        for b in retag_all(samples.builds, tag)
    ]
    await post(settings, list(own.values()))
    await asyncio.sleep(1)  # validation reads the approvals topic: let it see them first

    async def fresh() -> None:
        await publish_builds(settings.kafka_bootstrap, builds, progress_lines(say))

    baseline = await timed(settings, {b.vin: 1 for b in builds}, timeout, fresh)
    say(f"baseline: {len(builds)} fresh builds archived in {baseline:.1f}s")

    corrected = [
        a.model_copy(update={"actual_mass_max_kg": (a.actual_mass_max_kg or 3000) + 5}) for a in own.values()
    ]
    await post(settings, corrected)
    await asyncio.sleep(1)
    client = make_client(settings)
    tokens = load_tokens(settings, dict(os.environ))
    api = PipelineApi(
        settings.url_of("status"), settings.url_of("archive"), settings.url_of("validation"), tokens
    )
    sender = KafkaSender(settings.kafka_bootstrap)
    await sender.producer.start()
    jobs = JobStore(database(client, settings))
    await jobs.setup()
    worker = Worker(jobs, api, api, sender)

    async def reissue() -> None:
        at = job_time(dt.datetime.now(dt.UTC))
        started = []
        for approval in corrected:
            job = Job(new_job_id(at), approval.key, master_data_sha256(approval), "bench", "bench", at)
            await jobs.create(job)
            started.append(job)
        began = time.monotonic()
        done = await asyncio.gather(*(patiently(worker, job) for job in started))
        took = time.monotonic() - began
        say(
            f"{sum(j.published for j in done)} re-issues planned and published by {len(done)} jobs in {took:.1f}s"
        )

    # The stack's workspace would take the jobs over from this worker (as from one that died, when a step
    # outlasts the lease): it is stopped while this process works them as it would.
    processes = stack_processes(settings.state_dir / "pids")
    try:
        with held(processes, ["workspace"] if "workspace" in processes else []):
            took = await timed(settings, {b.vin: 2 for b in builds}, timeout, reissue)
    finally:
        await sender.producer.stop()
        await api.close()
        await client.close()
    print(
        f"re-issue: {len(builds)} certificates corrected end to end in {took:.1f}s: {len(builds) / took:.1f}/s"
    )
    print(f"baseline: {len(builds)} fresh builds archived in {baseline:.1f}s: {len(builds) / baseline:.1f}/s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reissue", description=__doc__.split("\n\n")[0])
    parser.add_argument("--vehicles", type=int, default=2000, help="certificates to issue, then re-issue")
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30), help="sample data seed")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for each phase")
    args = parser.parse_args(argv)
    asyncio.run(run(args.vehicles, args.seed, args.timeout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
