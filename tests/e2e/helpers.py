"""The private stack the pipeline tests drive as a user does, and the checks they make on it.

The stack runs beside any developer's stack: its own state folder, its own ports
(Kafka 19092/19093, FerretDB 37017, services 18081-18087), the binaries of the
shared cache. Everything reaches it through the ``coc`` command, HTTP with the
bearer tokens it generated, Kafka and MongoDB: the same ways in a user has.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from lxml import etree

from deploy.local.health import port_open
from deploy.local.layout import StackPaths
from deploy.local.services import SERVICES, service_env
from deploy.local.settings import StackSettings
from deploy.local.supervise import is_alive, read_records
from devkit.authorities import Pki
from devkit.masterdata import make_known, names_of
from devkit.mes import Message, progress_lines, publish, publish_builds, retag_all
from devkit.samples import PlantedDefect, generate
from devkit.watch import StatusWatch, describe, settle, topic_partitions, watching
from shared import topics
from shared.auth import Role, load_tokens
from shared.contracts import Approval, BuildRecord
from shared.contracts.events import DeadLetter, State
from shared.contracts.masterdata import MasterKind
from shared.kafka import options_for
from shared.mongo import make_sync_client
from shared.xml import load_ivi_schema, parse_bytes, validate
from shared.xmldsig import verify

COC = str(Path(sys.executable).with_name("coc"))
COMMAND_TIMEOUT = 600  # a first `up` on a fresh machine also fetches Kafka and builds FerretDB
REVIEW_GROUP = "E2E-REVIEW"
PRIVATE = {
    "COC_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "COC_KAFKA_CONTROLLER_PORT": "19093",
    "COC_MONGO_URL": "mongodb://127.0.0.1:37017",
    "COC_PORT_BASE": "18080",
    "COC_RELEASE_POLICY": f'{{"{REVIEW_GROUP}": "review"}}',
}
# Inherited COC_ settings that still make sense for a private stack; any other
# (a developer's tokens, seal, addresses) would tie it to theirs.
INHERITED = ("COC_CACHE_DIR", "COC_IVI_XSD", "COC_KAFKA_IDEMPOTENCE")
HTTP_CONCURRENCY = 16
IVI_NS = "http://eu.ereg.initialvehicleinformation.v2"


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# --- sample sets with VINs of their own ------------------------------------------------------


@dataclass(frozen=True)
class SampleRun:
    """One test's builds: sample builds with their own VIN tag, and the defects planted in them."""

    builds: tuple[BuildRecord, ...]
    defects: Mapping[str, PlantedDefect]  # build_id -> defect
    approvals: tuple[Approval, ...]

    @property
    def clean(self) -> list[BuildRecord]:
        return [b for b in self.builds if b.build_id not in self.defects]

    @property
    def defective(self) -> list[BuildRecord]:
        return [b for b in self.builds if b.build_id in self.defects]

    @property
    def vins(self) -> list[str]:
        return [b.vin for b in self.builds]

    @property
    def expected(self) -> dict[str, int]:
        return {b.vin: b.revision for b in self.builds}


def sample_run(vehicles: int, seed: int, tag: str, defect_share: float = 0.2) -> SampleRun:
    """``samples.generate`` with every VIN tagged, so no other test's records share a VIN."""
    samples = generate(vehicles, seed, defect_share)
    return SampleRun(tuple(retag_all(samples.builds, tag)), samples.defects, samples.approvals)


def clean_twin(run_seed: int, vehicles: int, tag: str, build: BuildRecord) -> BuildRecord:
    """The build as it was before its defect was planted (same seed, no defects)."""
    clean = sample_run(vehicles, run_seed, tag, 0.0)
    return next(b for b in clean.builds if b.build_id == build.build_id)


# --- the stack ---------------------------------------------------------------------------------


def private_env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COC_") or k in INHERITED}
    return {**env, **PRIVATE, **delivery_env(state_dir), "COC_STATE_DIR": str(state_dir)}


# The private stack delivers to the test authorities (devkit.authorities) the delivery tests start:
# certificates for Lithuania to a NAP, for the UK to the VCA; no sample build goes to either.
NAP_PORT, VCA_PORT = 18443, 18444
NAP_COUNTRY, VCA_COUNTRY = "LT", "UK"
VCA_CLIENT, VCA_SECRET = "coc-e2e", "e2e-secret-for-the-test-vca"


def authorities_dir(state_dir: Path) -> Path:
    return state_dir / "authorities"


def delivery_env(state_dir: Path) -> dict[str, str]:
    pki = Pki(authorities_dir(state_dir))
    destinations = {
        "nap-lt": {
            "kind": "nap",
            "countries": [NAP_COUNTRY],
            "endpoints": {"acceptance": f"https://127.0.0.1:{NAP_PORT}/nap/ecoc"},
            "client_cert": str(pki.cert("client")),
            "client_key": str(pki.key("client")),
            "server_ca": str(pki.ca),
            "timeout_s": 5,
        },
        "vca": {
            "kind": "vca",
            "countries": [VCA_COUNTRY],
            "endpoints": {"acceptance": f"http://127.0.0.1:{VCA_PORT}"},
            "token_urls": {"acceptance": f"http://127.0.0.1:{VCA_PORT}/oauth2/token"},
            "client_id": VCA_CLIENT,
            "scopes": {"acceptance": "ecoc"},
            "manufacturer_id": "E2E-MANUFACTURER",
            "contact_id": "E2E-CONTACT",
            "timeout_s": 5,
        },
    }
    return {
        "COC_DELIVERY_DESTINATIONS": json.dumps(destinations),
        "COC_DELIVERY_SECRETS": json.dumps({"vca": VCA_SECRET}),
        "COC_DELIVERY_UNROUTED": "ignore",
        "COC_DELIVERY_RETRY_INITIAL_S": "0.5",
        "COC_DELIVERY_RETRY_MAX_S": "3",
        "COC_DELIVERY_POLL_S": "0.5",
        "COC_DELIVERY_SCAN_S": "0.5",
        "COC_DELIVERY_LEASE_S": "20",
        "COC_DELIVERY_CONCURRENCY": "16",
    }


def settings_of(env: Mapping[str, str]) -> StackSettings:
    """The settings the stack's processes read from ``env`` (they run where no .env file is)."""
    with mock.patch.dict(os.environ, env, clear=True):
        return StackSettings(_env_file=None)


@dataclass
class PrivateStack:
    """A handle on the private stack: run ``coc`` with its environment, reach its services."""

    env: dict[str, str]
    settings: StackSettings
    tokens: dict[Role, str] = field(default_factory=dict)
    http: httpx.AsyncClient | None = None
    known: dict[MasterKind, set[str]] = field(default_factory=dict)  # plants and groups made known here

    @classmethod
    def at(cls, state_dir: Path) -> PrivateStack:
        env = private_env(state_dir)
        return cls(env, settings_of(env))

    @property
    def paths(self) -> StackPaths:
        return StackPaths.of(self.settings)

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    # -- as processes

    def coc(
        self, *args: str, timeout: float = COMMAND_TIMEOUT, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        began = time.monotonic()
        result = subprocess.run(
            [COC, *args],
            input=stdin,
            env=self.env,
            cwd=self.settings.state_dir,  # no .env file of a developer's there
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        say(f"$ coc {' '.join(args)} -> {result.returncode} in {time.monotonic() - began:.1f}s")
        return result

    def up(self) -> str:
        """``coc stack up``: starts whatever is stopped and waits until all answer."""
        result = self.coc("stack", "up")
        assert result.returncode == 0, f"coc stack up failed:\n{result.stdout}{result.stderr}"
        return result.stdout

    def taken_ports(self) -> list[str]:
        ports = [self.settings.kafka_host_port, ("127.0.0.1", self.settings.kafka_controller_port)]
        ports += [self.settings.mongo_host_port]
        ports += [(self.settings.http_host, self.settings.port_of(name)) for name in SERVICES]
        return [f"{host}:{port}" for host, port in ports if port_open(host, port)]

    def pid(self, name: str) -> int:
        return self._record(name).pid

    def _record(self, name: str) -> Any:
        found = [r for r in read_records(self.paths) if r.name == name]
        assert found, f"no pid file for {name} in {self.paths.pids}"
        return found[0]

    def kill(self, name: str) -> int:
        """SIGKILL one process of the stack (its pid file stays: the stack sees it gone); its pid."""
        record = self._record(name)
        assert is_alive(record), f"{name} (pid {record.pid}) is not running before the kill"
        os.kill(record.pid, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while is_alive(record):
            assert time.monotonic() < deadline, f"{name} (pid {record.pid}) survived SIGKILL"
            time.sleep(0.1)
        say(f"killed {name} (pid {record.pid}) with SIGKILL")
        return record.pid

    def log(self, name: str) -> Path:
        return self.paths.log_file(name)

    def load_tokens(self) -> None:
        self.tokens = load_tokens(self.settings, {})
        missing = set(Role) - set(self.tokens)
        assert not missing, f"tokens for {sorted(missing)} missing in {self.settings.state_dir}/tokens.env"

    def start_service(self, name: str, port: int, log: Path) -> subprocess.Popen[bytes]:
        """One more instance of a service (``coc service NAME --port``), in the stack's environment."""
        env = {**self.env, **service_env(self.settings)}
        with log.open("ab") as sink:
            return subprocess.Popen(
                [COC, "service", name, "--port", str(port)],
                env=env,
                cwd=self.settings.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    # -- HTTP

    def url(self, service: str) -> str:
        return self.settings.url_of(service)

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[PrivateStack]:
        async with httpx.AsyncClient(timeout=60) as http:
            self.http = http
            try:
                yield self
            finally:
                self.http = None

    @property
    def web(self) -> httpx.AsyncClient:
        assert self.http is not None, "use `async with stack.client()`"
        return self.http

    async def post_approvals(self, approvals: Sequence[Approval]) -> httpx.Response:
        body = "[" + ",".join(a.model_dump_json() for a in approvals) + "]"
        return await self.web.post(
            f"{self.url('intake')}/v1/approvals",
            content=body.encode(),
            headers={**self.auth(Role.TYPE_APPROVAL), "Content-Type": "application/json"},
        )

    async def post_review(self, vin: str, revision: int, decision: str, reviewer: str) -> httpx.Response:
        review = {"vin": vin, "revision": revision, "decision": decision, "reviewer": reviewer}
        return await self.web.post(
            f"{self.url('intake')}/v1/reviews", json=review, headers=self.auth(Role.REVIEWER)
        )

    async def record(self, vin: str) -> dict[str, Any] | None:
        response = await self.web.get(
            f"{self.url('status')}/v1/records/{vin}", headers=self.auth(Role.VIEWER)
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, f"GET /v1/records/{vin}: {response.status_code} {response.text}"
        return dict(response.json())

    async def records(self, vins: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """Each VIN's status record from the status API (None: no record)."""
        vins = list(vins)
        limit = asyncio.Semaphore(HTTP_CONCURRENCY)

        async def one(vin: str) -> dict[str, Any] | None:
            async with limit:
                return await self.record(vin)

        return dict(zip(vins, await asyncio.gather(*(one(v) for v in vins)), strict=True))

    async def certificate(self, vin: str, revision: int | None = None) -> httpx.Response:
        suffix = f"/{revision}" if revision else ""
        return await self.web.get(
            f"{self.url('archive')}/v1/certificates/{vin}{suffix}", headers=self.auth(Role.VIEWER)
        )

    async def certificates(self, vins: Iterable[str]) -> dict[str, httpx.Response]:
        vins = list(vins)
        limit = asyncio.Semaphore(HTTP_CONCURRENCY)

        async def one(vin: str) -> httpx.Response:
            async with limit:
                return await self.certificate(vin)

        return dict(zip(vins, await asyncio.gather(*(one(v) for v in vins)), strict=True))

    # -- Kafka

    async def publish(self, builds: Sequence[BuildRecord]) -> dict[str, float]:
        """As an MES: one message per build on coc.builds.v1, key = VIN; when each was sent.

        Their plants and vehicle groups are made known first, as the compliance lead
        does, and read by validation: else they would be blocked as unknown.
        """
        await self.make_known(builds)
        return await publish_builds(self.bootstrap, builds, progress_lines(say))

    async def make_known(self, builds: Sequence[BuildRecord]) -> None:
        """The plants and groups of ``builds`` this handle has not made known yet, known to validation."""
        fresh = {kind: named - self.known.get(kind, set()) for kind, named in names_of(builds).items()}
        if any(fresh.values()):
            await make_known(self.settings, self.url("validation"), self.tokens[Role.VIEWER], fresh)
            for kind, named in fresh.items():
                self.known.setdefault(kind, set()).update(named)

    async def publish_and_settle(
        self, builds: Sequence[BuildRecord], timeout: float
    ) -> dict[str, dict[str, Any]]:
        """Publish as an MES and wait until every build's VIN settles at its revision; the records."""
        expected = {b.vin: b.revision for b in builds}
        async with self.watch(expected) as watch:
            await self.publish(builds)
            return await self.settle(watch, expected, timeout)

    async def publish_raw(self, messages: Sequence[Message]) -> list[int]:
        """Raw messages on coc.builds.v1, in order; the partition each landed on."""
        return [partition for _at, partition in await publish(self.bootstrap, messages)]

    def watch(self, expected: Mapping[str, int]) -> contextlib.AbstractAsyncContextManager[StatusWatch]:
        return watching(self.bootstrap, expected, say)

    async def dead_letters(
        self, topic: str, wanted: Mapping[str, int], timeout: float = 60
    ) -> list[DeadLetter]:
        """Dead letters of ``topic`` whose key is in ``wanted``, once each key has that many."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(**options_for(self.bootstrap), group_id=None, enable_auto_commit=False)
        await consumer.start()
        found: list[DeadLetter] = []
        try:
            dlq = topics.dlq(topic)
            partitions = [TopicPartition(dlq, p) for p in await topic_partitions(self.bootstrap, dlq)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            deadline = time.monotonic() + timeout
            while Counter(d.key for d in found if d.key in wanted) < Counter(wanted):
                assert time.monotonic() < deadline, (
                    f"dead letters for {dict(wanted)} not all in {topics.dlq(topic)} after {timeout:.0f}s; "
                    f"found {[(d.key, d.reason) for d in found]}"
                )
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for record in records:
                        letter = DeadLetter.model_validate_json(record.value or b"")
                        if letter.key in wanted:
                            found.append(letter)
        finally:
            await consumer.stop()
        return found

    # -- MongoDB

    @contextlib.contextmanager
    def mongo(self) -> Iterator[Any]:
        """The stack's database, for a test that must reach behind the services (to tamper, say)."""
        client = make_sync_client(self.settings, tz_aware=False)
        try:
            yield client[self.settings.mongo_db]
        finally:
            client.close()

    def archive_rows(self, vins: Iterable[str]) -> list[dict[str, Any]]:
        """(vin, revision) of every document of coc.archive_certificates for these VINs."""
        client = make_sync_client(self.settings, tz_aware=False)
        try:
            collection = client[self.settings.mongo_db]["archive_certificates"]
            return list(collection.find({"vin": {"$in": list(vins)}}, {"_id": 0, "vin": 1, "revision": 1}))
        finally:
            client.close()

    # -- waiting

    async def settle(
        self, watch: StatusWatch, expected: Mapping[str, int], timeout: float, *, status_api: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Wait (bounded) until every VIN is settled (``devkit.watch.settle``); each VIN's record.

        With ``status_api`` the records are the status API's, else what the topic said.
        """
        return await settle(watch, expected, timeout, self.records if status_api else None, say)


# --- what a settled run must show -----------------------------------------------------------


def outcome_problems(run: SampleRun, records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every way the records differ from what the sample set says they must become."""
    problems = []
    for build in run.clean:
        record = records[build.vin]
        if record["state"] != State.ARCHIVED or record["revision"] != build.revision:
            problems.append(f"clean {build.vin}: {describe(record)}, findings {codes(record)}")
    for build in run.defective:
        defect = run.defects[build.build_id]
        record = records[build.vin]
        owners = {f["code"]: f["owner"] for f in record["findings"]}
        if record["state"] not in (State.BLOCKED, State.NEEDS_REVIEW):
            problems.append(f"defective {build.vin} ({defect.defect}): {describe(record)}")
        elif owners.get(defect.expected_code) != defect.owner.value or record["owner"] != defect.owner.value:
            problems.append(
                f"defective {build.vin} ({defect.defect}): expected {defect.expected_code} owned by "
                f"{defect.owner.value}, got findings {owners}, owner {record['owner']}"
            )
    return problems


def codes(record: Mapping[str, Any]) -> list[str]:
    return [f["code"] for f in record.get("findings", [])]


def show(problems: Sequence[str], limit: int = 25) -> str:
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n  " + "\n  ".join(problems[:limit]) + more


def archive_problems(rows: Sequence[Mapping[str, Any]], clean: Sequence[BuildRecord]) -> list[str]:
    """Exactly one archived certificate per clean (VIN, revision), and none for anything else."""
    counts = Counter((row["vin"], int(row["revision"])) for row in rows)
    wanted = {(b.vin, b.revision) for b in clean}
    problems = [f"{vin} revision {rev}: {n} certificates" for (vin, rev), n in counts.items() if n != 1]
    problems += [f"{vin} revision {rev}: not archived" for vin, rev in sorted(wanted - set(counts))]
    problems += [f"{vin} revision {rev}: archived but not clean" for vin, rev in sorted(set(counts) - wanted)]
    if sum(counts.values()) != len(wanted):
        problems.append(f"{sum(counts.values())} certificates for {len(wanted)} clean builds")
    return problems


# --- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateCheck:
    xsd: Path
    seal_cert: Path
    schema: etree.XMLSchema

    @classmethod
    def of(cls, stack: PrivateStack) -> CertificateCheck:
        xsd = stack.settings.xsd_path()
        return cls(xsd, stack.settings.state_dir / "keys" / "seal.crt", load_ivi_schema(xsd))

    def in_process(self, vin: str, data: bytes) -> list[str]:
        """The seal verifies with the stack's certificate, the document keeps the schema, the VIN is its own."""
        problems = []
        result = verify(data, self.seal_cert.read_bytes())
        if not result.valid:
            problems.append(f"{vin}: seal does not verify: {'; '.join(result.reasons)}")
        root = parse_bytes(data)
        problems += [f"{vin}: schema: {error}" for error in validate(self.schema, root)[:3]]
        found = root.findtext(f".//{{{IVI_NS}}}VehicleIdentificationNumber")
        if found != vin:
            problems.append(f"{vin}: certificate carries VIN {found}")
        return problems

    def external(self, files: Sequence[Path]) -> list[str]:
        """xmlsec1 and xmllint, independent of the code that signed and checked the documents."""
        problems = []
        for file in files:
            signed = subprocess.run(
                [
                    "xmlsec1",
                    "--verify",
                    "--enabled-reference-uris",
                    "empty",
                    "--trusted-pem",
                    str(self.seal_cert),
                    str(file),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if signed.returncode != 0:
                problems.append(f"xmlsec1 rejects {file.name}: {signed.stderr.strip()[-500:]}")
        linted = subprocess.run(
            ["xmllint", "--noout", "--nonet", "--schema", str(self.xsd), *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
        )
        valid = [line for line in linted.stderr.splitlines() if line.endswith(" validates")]
        if linted.returncode != 0 or len(valid) != len(files):
            problems.append(f"xmllint: {len(valid)} of {len(files)} valid:\n{linted.stderr[-2000:]}")
        return problems


@contextlib.contextmanager
def own_stack(request: Any, label: str, env: Mapping[str, str], *up: str) -> Iterator[PrivateStack]:
    """``coc stack up [up...]`` on a state folder and ports of a module's own (``env``: its ports and
    settings), without the test authorities unless ``env`` names destinations (else the certificates
    stop at the archive); ``coc stack down`` at the end, the state removed after a green module and
    its logs kept, with their path said, after a red one."""
    state_dir = Path(tempfile.mkdtemp(prefix=f"coc-e2e-{label.lower().replace(' ', '-')}-"))
    stack = PrivateStack.at(state_dir)
    for delivery_setting in ("COC_DELIVERY_DESTINATIONS", "COC_DELIVERY_SECRETS"):
        stack.env.pop(delivery_setting, None)
    stack.env.update(env)
    stack.settings = settings_of(stack.env)
    taken = stack.taken_ports()
    if taken:
        shutil.rmtree(state_dir, ignore_errors=True)
        pytest.fail(f"ports of the {label} stack are taken ({', '.join(taken)}): another session, or program")
    failed_before, started = request.session.testsfailed, False
    try:
        began = time.monotonic()
        result = stack.coc("stack", "up", *up)
        if result.returncode != 0:
            pytest.fail(
                f"coc stack up {' '.join(up)}, {label} (state {state_dir}):\n{result.stdout}{result.stderr}"
            )
        started = True
        say(f"{label} stack up in {time.monotonic() - began:.0f}s, state {state_dir}")
        stack.load_tokens()
        yield stack
    finally:
        down = stack.coc("stack", "down")
        if started and down.returncode == 0 and request.session.testsfailed == failed_before:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            say(f"{label} stack's logs kept in {state_dir}/logs")
