"""The readers of outside input under coverage-guided fuzzing, for a bounded time (tests/fuzz)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devkit.samples import generate

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 20


def test_twenty_seconds_of_fuzzing_find_no_crash_in_import_contracts_or_request_bodies(
    tmp_path: Path, specimen_bytes: bytes
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    build = generate(1, seed=2, defect_share=0.0).builds[0].model_dump_json().encode()
    (corpus / "specimen").write_bytes(b"x" + specimen_bytes)
    (corpus / "build").write_bytes(b"j" + build)
    (corpus / "body").write_bytes(b"b[" + build + b"]")
    (corpus / "ndjson").write_bytes(b"b" + build + b"\n" + build)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "fuzz" / "fuzz_inputs.py"),
            f"-max_total_time={SECONDS}",
            "-rss_limit_mb=2048",
            "-max_len=200000",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        check=False,
        cwd=ROOT,
    )
    crashes = sorted(
        path.name for path in tmp_path.iterdir() if path.name.startswith(("crash-", "oom-", "timeout-"))
    )
    assert done.returncode == 0 and not crashes, f"{crashes}\n{done.stderr[-3000:]}"
    assert "Done" in done.stderr or "INFO" in done.stderr
