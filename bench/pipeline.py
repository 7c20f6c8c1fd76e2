"""End-to-end throughput of a running stack: builds straight to coc.builds.v1, timed until archived.

    python -m bench.pipeline [--builds N] [--rate R] [--preload N] [--hold SERVICE] [--seed S]
                             [--timeout SECONDS]

Against the stack the settings point at (``COC_`` environment variables, else the
defaults of ``coc stack up``): the sample approvals are posted to intake over HTTP
(type-approval token), then N clean sample builds, each with a VIN no earlier run
used, are published to coc.builds.v1 the way a factory MES does (one message per
build, key = VIN). A consumer of coc.status.v1, positioned at its end before the
first publish, sees every record arrive in its final state; nothing polls the
services, so the measurement does not load them.

Printed: builds archived per second from the first publish to the last archive,
and the median and 99th percentile of the time from publish to archived (our
publish time against the archive stage's ``archived`` event) and from intake's
``received`` event to the ``archived`` one. Then the efficiency: that rate
divided by the rate of the stages' own code for one certificate in one process
on one core (``bench.stagecode``, measured in the same run before the
pipeline's and again after it, their mean); and per process of the stack (each service, Kafka, the database)
the CPU seconds it used from the first publish until at rest, per 1,000
certificates, and its peak resident memory (``bench.resources``).

``--rate R`` publishes R builds a second, as a line produces them (for the
latency at line pace); the default publishes all at once (for throughput).
``--preload N`` first brings the stack to N archived certificates (untimed,
published at once, skipped for what an earlier preload already archived) and
waits until the status read model has folded them, so the measured run meets a
database that already holds them and a stack at rest.

``--hold status`` stops the status service (SIGSTOP) from the first publish until
at rest, and lets it catch up after: the difference from a run without it is
what folding the read model during the run costs the pipeline (likewise
``workspace`` and ``delivery``, the other services off the certificates' path).
The bench's own process is shown below the stack's total, as ``(bench)``.

The pieces (VIN tags and publishing in ``devkit.mes``, the status watch in
``devkit.watch``) are also what ``coc demo`` and the end-to-end tests drive the stack with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from bench.resources import Usage, measuring, stack_processes
from bench.stagecode import StageCode, measure
from devkit.mes import fresh_tag, progress_lines, publish_builds, retag_all
from devkit.samples import generate
from devkit.watch import STATUS_GROUP, NotSettled, StatusWatch, at_rest, consumer_lags, say, watching
from shared import topics
from shared.contracts import BuildRecord
from shared.mongo import database, make_client
from shared.settings import ServiceSettings
from shared.stage import settle_collector

# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Figures:
    builds: int
    archived: int
    other: Counter[str]
    seconds: float
    per_second: float
    publish_to_archived: tuple[float, float]
    received_to_archived: tuple[float, float]
    read_model_behind_s: float = 0.0  # from at rest until the status read model had folded everything
    whole: Usage | None = None  # the processes' use until then

    def lines(self) -> list[str]:
        p50, p99 = self.publish_to_archived
        r50, r99 = self.received_to_archived
        others = ", ".join(f"{state} {n}" for state, n in sorted(self.other.items())) or "none"
        return [
            f"builds published                {self.builds}",
            f"archived                        {self.archived}   (other outcomes: {others})",
            f"first publish to last archive   {self.seconds:.1f} s",
            f"throughput                      {self.per_second:.1f} builds archived per second",
            f"publish to archived             median {p50:.2f} s   p99 {p99:.2f} s",
            f"received to archived            median {r50:.2f} s   p99 {r99:.2f} s",
        ]


def figures(published: Mapping[str, float], watch: StatusWatch) -> Figures:
    archived = {vin: s for vin, s in watch.seen.items() if vin in published and s.archived_at is not None}
    if not archived:
        raise RuntimeError("no build was archived: nothing to measure")
    first = min(published.values())
    last = max(s.archived_at for s in archived.values() if s.archived_at is not None)
    latency = [s.archived_at - published[vin] for vin, s in archived.items() if s.archived_at]
    inside = [s.archived_at - s.received_at for s in archived.values() if s.archived_at and s.received_at]
    other = Counter(
        s.state.value if s.state else "unseen" for vin, s in watch.seen.items() if vin not in archived
    )
    seconds = last - first
    return Figures(
        builds=len(published),
        archived=len(archived),
        other=other,
        seconds=seconds,
        per_second=len(archived) / seconds if seconds > 0 else float("inf"),
        publish_to_archived=(statistics.median(latency), percentile(latency, 0.99)),
        received_to_archived=(statistics.median(inside), percentile(inside, 0.99)) if inside else (0, 0),
    )


# --- the command -----------------------------------------------------------------------------


async def post_approvals(settings: ServiceSettings) -> int:
    """The sample approval master data, posted to intake as the type-approval team does."""
    import httpx

    from devkit.samples import catalogue
    from shared.auth import Role, load_tokens

    tokens = load_tokens(settings, dict(os.environ))
    if Role.TYPE_APPROVAL not in tokens:
        raise SystemExit(
            f"no type-approval token: set COC_TOKEN_TYPE_APPROVAL or run `coc stack up` ({settings.state_dir})"
        )
    approvals = [entry.approval for entries in catalogue().values() for entry in entries]
    body = json.dumps([a.model_dump(mode="json") for a in approvals]).encode()
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            f"{settings.intake_url}/v1/approvals",
            content=body,
            headers={
                "Authorization": f"Bearer {tokens[Role.TYPE_APPROVAL]}",
                "Content-Type": "application/json",
            },
        )
    if response.status_code != 202:
        raise SystemExit(f"POST /v1/approvals: {response.status_code} {response.text[:500]}")
    return len(approvals)


async def known_sample_names(settings: ServiceSettings) -> None:
    """The sample plants and vehicle groups made known, as the compliance lead does, before any build."""
    from devkit.masterdata import make_known, sample_names
    from shared.auth import Role, load_tokens

    viewer = load_tokens(settings, dict(os.environ)).get(Role.VIEWER)
    if viewer is None:
        raise SystemExit(
            f"no viewer token: set COC_TOKEN_VIEWER or run `coc stack up` ({settings.state_dir})"
        )
    await make_known(settings, settings.url_of("validation"), viewer, sample_names())


async def publish_and_wait(
    settings: ServiceSettings, builds: Sequence[BuildRecord], timeout: float, rate: float, what: str
) -> tuple[dict[str, float], StatusWatch]:
    """Publish ``builds`` and wait until every one is archived (or at rest); the publish times."""
    expected = {build.vin: build.revision for build in builds}
    async with watching(settings.kafka_bootstrap, expected) as watch:
        pace = f" at {rate:g} per second" if rate > 0 else " at once"
        say(f"publishing {len(builds)} {what}{pace} to {topics.BUILDS}")
        published = await publish_builds(settings.kafka_bootstrap, builds, progress_lines(say), rate)
        took = await watch.wait(at_rest, timeout, "archived", every=5)
        say(f"at rest {took:.1f}s after the last publish")
    return published, watch


# How many certificates earlier preloads archived, kept in the stack's own database: a database
# made afresh (its data folder removed) forgets it with the certificates (a marker file did not).
PRELOAD_COLLECTION, PRELOAD_ID = "bench_preload", "archived"


async def preload(settings: ServiceSettings, wanted: int, rng: random.Random, timeout: float) -> None:
    """Archive builds until the stack holds ``wanted`` certificates from preloads (untimed)."""
    client = make_client(settings)
    try:
        marker = database(client, settings)[PRELOAD_COLLECTION]
        found = await marker.find_one({"_id": PRELOAD_ID})
        done = int(found["n"]) if found else 0
        while done < wanted:
            chunk = min(20_000, wanted - done)
            builds = retag_all(generate(chunk, rng.randrange(1 << 30), 0.0).builds, fresh_tag(rng))
            published, watch = await publish_and_wait(settings, builds, timeout, 0.0, "preload builds")
            done += figures(published, watch).archived
            await marker.replace_one({"_id": PRELOAD_ID}, {"n": done}, upsert=True)
            say(f"preload: {done}/{wanted} certificates archived")
    finally:
        await client.close()


@contextlib.contextmanager
def held(processes: Mapping[str, int], names: Sequence[str]) -> Iterator[None]:
    """Stop the named processes (SIGSTOP) for the block, and let them go on after it, whatever happens.

    Only services off the certificates' path (``HOLDABLE``): what one costs the
    pipeline shows as the difference from a run without the hold. Their
    consumers resume where they were; nothing they would have read is lost.
    """
    pids = []
    for name in names:
        if name not in processes:
            raise SystemExit(f"--hold {name}: the stack has no such process running")
    try:
        for name in names:
            os.kill(processes[name], signal.SIGSTOP)
            pids.append(processes[name])
            say(f"holding {name} (pid {processes[name]}) until the pipeline is at rest")
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def run(
    builds_wanted: int,
    seed: int | None,
    timeout: float,
    rate: float = 0.0,
    preloaded: int = 0,
    hold: Sequence[str] = (),
) -> tuple[Figures, StageCode, Usage]:
    settings = ServiceSettings()
    rng = random.Random(seed)
    say("measuring the stages' own code on one core")
    code = measure()
    say(f"stack: Kafka {settings.kafka_bootstrap}, intake {settings.intake_url}")
    await known_sample_names(settings)
    say(f"{await post_approvals(settings)} approvals posted to intake")
    await asyncio.sleep(1)  # validation reads the approvals topic: let it see them first
    if preloaded:
        await preload(settings, preloaded, rng, max(timeout, 3600))
        # The timed run meets a stack at rest: the read model has folded the preload too (it
        # folds ~2,200 events/s, while a burst at full speed makes ~2,900; five bursts in a row
        # left 330,000 events to fold during the timed run, FerretDB's CPU doubling in it).
        behind_s = await read_model_current(settings, max(timeout, 3600))
        say(f"preload: the status read model was current {behind_s:.0f} s after")
    sample_seed = rng.randrange(1 << 30)
    builds = retag_all(generate(builds_wanted, sample_seed, 0.0).builds, fresh_tag(rng))
    # The bench's own process (the MES publishing, the status watch) shares the cores with the
    # stack: shown below the stack's total, not in it.
    processes = {**stack_processes(settings.state_dir / "pids"), BENCH: os.getpid()}
    # What lives through the run (the builds, the imports) is left out of the collector's
    # passes, and the youngest generation is collected less often, as in the services: the
    # watch keeps every status event it reads (this process: 3.9 CPU s before, 3.1-3.5 after).
    settle_collector(settings.gc_young)
    async with measuring(processes, apart=frozenset({BENCH})) as whole:
        async with measuring(processes, apart=frozenset({BENCH})) as usage:
            with held(processes, hold):
                published, watch = await publish_and_wait(
                    settings, builds, timeout, rate, f"builds (sample seed {sample_seed})"
                )
        behind_s = await read_model_current(settings, timeout)
    # The stages' own code once more, the stack at rest: the machine's speed drifted by up to 13%
    # between runs of the same day, and a single measure before the run carried that into the
    # efficiency; the mean of the two measures is what the run is set against.
    say("measuring the stages' own code on one core again")
    code = StageCode.mean_of([code, measure()])
    # ``whole`` is filled in as its block ends: the object is the one kept here.
    return replace(figures(published, watch), read_model_behind_s=behind_s, whole=whole), code, usage


BENCH = "(bench)"  # this process's row: publisher and status watch
HOLDABLE = ("status", "workspace", "delivery")  # read what the pipeline makes; not on the way to the archive


async def read_model_current(settings: ServiceSettings, timeout: float) -> float:
    """Seconds until the status service has folded every status event there is.

    The pipeline is at rest when every build has its outcome on the status
    topic; the read model behind the board and the worklists folds that topic
    on its own, and after a burst it may still be catching up.
    """
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    from shared.kafka import client_options

    admin = AIOKafkaAdminClient(**client_options(settings))
    ends = AIOKafkaConsumer(**client_options(settings))
    await admin.start()
    await ends.start()
    began = loop_time()
    try:
        while True:
            # A partition the group committed nothing on yet counts whole (``consumer_lags``).
            lags = await consumer_lags(admin, ends, (STATUS_GROUP,), ())
            behind = lags[STATUS_GROUP]
            if behind <= 0:
                return loop_time() - began
            if loop_time() - began > timeout:
                raise NotSettled(
                    f"the status read model is still {behind} events behind after {timeout:.0f} s"
                )
            if round(loop_time() - began) % 5 == 0:
                say(f"status read model: {behind} events to fold")
            await asyncio.sleep(1)
    finally:
        await ends.stop()
        await admin.close()


def loop_time() -> float:
    return asyncio.get_running_loop().time()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--builds", type=int, default=2000, help="builds to publish (default 2000)")
    parser.add_argument("--seed", type=int, help="seed of the sample data and VIN tag (default: random)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the pipeline")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="builds published per second, as a line produces them (default: all at once)",
    )
    parser.add_argument(
        "--preload",
        type=int,
        default=0,
        help="first bring the stack to this many archived certificates (untimed; default 0)",
    )
    parser.add_argument(
        "--hold",
        action="append",
        default=[],
        choices=HOLDABLE,
        help="stop this service (SIGSTOP) from the first publish until at rest, to measure what it "
        "costs the pipeline (repeatable; it catches up after)",
    )
    args = parser.parse_args(argv)
    if args.rate < 0:
        parser.error("--rate must be 0 (all at once) or more")
    if args.builds < 1 or args.preload < 0:
        parser.error("--builds must be 1 or more and --preload 0 or more")
    try:
        result, code, usage = asyncio.run(
            run(args.builds, args.seed, args.timeout, args.rate, args.preload, args.hold)
        )
    except NotSettled as exc:
        print(f"bench.pipeline: {exc}", file=sys.stderr)
        return 1
    efficiency = result.per_second / code.per_certificate
    print(
        "\n".join(
            [
                "",
                "end-to-end pipeline",
                *result.lines(),
                *code.lines(),
                f"efficiency                      {efficiency:.3f}  (end-to-end rate / stage code on one core)",
                "",
                "per process, first publish to at rest",
                *usage.lines(result.archived),
                "",
                f"status read model current       {result.read_model_behind_s:.0f} s after the pipeline was at rest",
                *(
                    [
                        "per process, first publish until the read model is current",
                        *result.whole.lines(result.archived),
                    ]
                    if result.whole is not None and result.read_model_behind_s >= 1
                    else []
                ),
            ]
        )
    )
    return 0 if result.archived == result.builds else 1


if __name__ == "__main__":
    sys.exit(main())
