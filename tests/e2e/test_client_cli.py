"""The client commands against the private stack, run as a user runs them.

`coc samples`, `coc publish approvals|builds`, `coc status`, `coc readiness`,
`coc export`, `coc verify` and `coc docs` as processes; what they print is
checked against what the sample data planted, not against the code's own output.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from deploy.local.services import service_env
from shared import topics
from tests.e2e.helpers import PrivateStack

pytestmark = pytest.mark.e2e

VEHICLES = 24
SEED = 77
TIMEOUT = 180


def run(pipeline: PrivateStack, *args: str) -> tuple[int, str, str]:
    result = pipeline.coc(*args)
    return result.returncode, result.stdout, result.stderr


async def wait_settled(pipeline: PrivateStack, expected: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Each VIN's record once it shows its revision in a state that stays."""
    moving = {"received", "validated", "rendered", "signed"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        records = await pipeline.records(expected)
        settled = {
            vin: r
            for vin, r in records.items()
            if r is not None and r["revision"] == expected[vin] and r["state"] not in moving
        }
        if len(settled) == len(expected):
            return settled
        assert loop.time() < deadline, f"{len(expected) - len(settled)} VINs did not settle"
        await asyncio.sleep(1)


@pytest.fixture(scope="module")
async def published(pipeline: PrivateStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample data made by `coc samples` and published by `coc publish`, settled."""
    folder = tmp_path_factory.mktemp("client")
    code, out, err = run(
        pipeline, "samples", "--out", str(folder), "--vehicles", str(VEHICLES), "--seed", str(SEED)
    )
    assert code == 0, err
    code, out, err = run(pipeline, "publish", "approvals", str(folder / "approvals.json"))
    assert code == 0 and "approvals published" in out, out + err
    code, out, err = run(pipeline, "publish", "builds", str(folder / "builds.jsonl"))
    assert code == 0, out + err
    assert f"{VEHICLES}/{VEHICLES}" in out + err, "no progress shown"
    builds = [json.loads(line) for line in (folder / "builds.jsonl").read_text().splitlines()]
    await wait_settled(pipeline, {b["vin"]: b["revision"] for b in builds})
    return folder


def planted(folder: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    builds = [json.loads(line) for line in (folder / "builds.jsonl").read_text().splitlines()]
    return builds, json.loads((folder / "defects.json").read_text())


async def test_status_shows_the_planted_finding_and_its_owner(
    pipeline: PrivateStack, published: Path
) -> None:
    builds, defects = planted(published)
    defective = next(b for b in builds if b["build_id"] in defects and len(b["vin"]) == 17)
    defect = defects[defective["build_id"]]
    code, out, err = await asyncio.to_thread(run, pipeline, "status", defective["vin"], "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["state"] in ("blocked", "needs_review")
    assert (defect["expected_code"], defect["owner"]) in {(f["code"], f["owner"]) for f in record["findings"]}

    code, out, err = await asyncio.to_thread(run, pipeline, "status", defective["vin"])
    assert code == 0, err
    assert record["state"] in out and defect["expected_code"] in out and defect["owner"] in out


async def test_readiness_counts_at_least_the_published_vehicles(
    pipeline: PrivateStack, published: Path
) -> None:
    builds, defects = planted(published)
    code, out, err = await asyncio.to_thread(run, pipeline, "readiness", "--json")
    assert code == 0, err
    answer = json.loads(out)
    readiness = answer["readiness"]
    assert set(answer["worklists"]) == {"type-approval", "production", "compliance", "integration"}
    assert readiness["total"] >= len(builds)
    assert readiness["by_state"]["archived"] >= len(builds) - len(defects)
    code, out, err = await asyncio.to_thread(run, pipeline, "readiness")
    assert code == 0 and "vehicle group" in out and "type-approval" in out, out + err


async def test_an_exported_certificate_verifies_against_the_stack_seal(
    pipeline: PrivateStack, published: Path, tmp_path: Path
) -> None:
    builds, defects = planted(published)
    clean = next(b for b in builds if b["build_id"] not in defects)
    target = tmp_path / "cert.xml"
    code, out, err = await asyncio.to_thread(run, pipeline, "export", clean["vin"], "--out", str(target))
    assert code == 0, err
    assert clean["vin"].encode() in target.read_bytes()
    cert = service_env(pipeline.settings)["COC_SEAL_CERT"]
    code, out, err = await asyncio.to_thread(run, pipeline, "verify", str(target), "--cert", cert)
    assert code == 0, out + err


async def test_bad_input_and_unknown_vins_get_one_line_and_a_failing_exit(
    pipeline: PrivateStack, published: Path, tmp_path: Path
) -> None:
    builds, _ = planted(published)
    broken = dict(builds[0], actual_mass_kg="heavy")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(broken) + "\n")
    checks = [
        (("publish", "builds", str(bad)), "actual_mass_kg"),
        (("publish", "builds", str(tmp_path / "missing.jsonl")), "missing.jsonl"),
        (("status", "WDB00000000000000"), "WDB00000000000000"),
        (("export", "WDB00000000000000", "--out", str(tmp_path / "x.xml")), "WDB00000000000000"),
    ]
    for args, named in checks:
        code, out, err = await asyncio.to_thread(run, pipeline, *args)
        assert code != 0, f"coc {' '.join(args)} succeeded"
        assert "Traceback" not in out + err, err
        assert named in err, f"coc {' '.join(args)}: the message does not name {named!r}: {err}"


async def test_docs_describe_every_topic(pipeline: PrivateStack, tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.json"
    code, _out, err = await asyncio.to_thread(run, pipeline, "docs", "--out", str(target))
    assert code == 0, err
    text = target.read_text()
    document = json.loads(text)
    assert "asyncapi" in document
    for name in topics.ALL:
        assert name in text, f"{name} missing from the AsyncAPI document"
