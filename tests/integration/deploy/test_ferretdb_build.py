"""The stack's FerretDB build, started on its own: what its sixth patch (no resource tracking) changes.

FerretDB as released registers every query iterator (and its SQL pool) with a
leak tracker: a pprof profile named ``FerretDB/<type>`` holding the caller's
stack, and a finalizer per iterator. The build turns that off
(``deploy/local/build-ferretdb.sh``, ``patch_no_resource_tracking``), so its
debug endpoint lists no such profile after reads and writes.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest
from pymongo import MongoClient, ReplaceOne

from bench.backends import free_port, wait_for
from deploy.local.layout import StackPaths
from deploy.local.settings import StackSettings

pytestmark = pytest.mark.integration


def test_the_build_tracks_no_query_iterator_and_still_reads_and_writes(tmp_path: Path) -> None:
    binary = StackPaths.of(StackSettings()).ferretdb_bin
    assert binary.exists(), f"{binary}: the stack's build is made by `coc stack up`"
    (tmp_path / "data").mkdir()
    port, debug = free_port(), free_port()
    server = subprocess.Popen(
        [
            str(binary),
            "--handler=sqlite",
            f"--sqlite-url=file:{tmp_path / 'data'}/",
            f"--state-dir={tmp_path}",
            f"--listen-addr=127.0.0.1:{port}",
            f"--debug-addr=127.0.0.1:{debug}",
            "--telemetry=disable",
            "--log-level=error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, "FerretDB")
        wait_for(debug, "FerretDB's debug endpoint")
        with MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=10_000) as client:
            collection = client["build"]["docs"]
            collection.insert_many([{"_id": f"V{n}", "seq": 1} for n in range(20)])
            collection.bulk_write([ReplaceOne({"_id": f"V{n}", "seq": 1}, {"seq": 2}) for n in range(20)])
            assert [d["seq"] for d in collection.find({"_id": {"$in": ["V3", "V4"]}})] == [2, 2]
            assert collection.delete_many({"seq": 2}).deleted_count == 20
        # No wait: a tracked iterator's profile is registered when the iterator is made,
        # before the answer goes out, and stays listed after it is closed.
        with urllib.request.urlopen(f"http://127.0.0.1:{debug}/debug/pprof/", timeout=10) as response:
            profiles = response.read().decode()
        assert "goroutine" in profiles  # the page lists the runtime's profiles
        tracked = sorted({line for line in profiles.splitlines() if "FerretDB/" in line})
        assert tracked == [], f"profiles of tracked resources: {tracked}"
    finally:
        server.terminate()
        server.wait(timeout=15)
