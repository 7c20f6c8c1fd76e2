"""Installing the stack's binaries once into the cache folder: Kafka's jars and FerretDB.

Kafka's jars come from Maven Central (``deploy/local/pom.xml``), FerretDB is built
from its Go module with four patches (``deploy/local/build-ferretdb.sh``). Each step
runs only when its result is missing, and under a lock, so two commands sharing a
tree never build into the same folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from deploy.local.layout import (
    DEPLOY_DIR,
    FERRETDB_BUILD,
    FERRETDB_VERSION,
    KAFKA_VERSION,
    Output,
    StackError,
    StackPaths,
    locked,
    tail,
)
from deploy.local.settings import StackSettings


def install(settings: StackSettings, out: Output = print) -> None:
    """Fetch Kafka's jars and build FerretDB into the cache folder, each only once."""
    paths = StackPaths.of(settings)
    paths.logs.mkdir(parents=True, exist_ok=True)
    with locked(paths.cache / ".install.lock", "install", out):
        _install_kafka(paths, out)
        _install_ferretdb(paths, out)


def _install_kafka(paths: StackPaths, out: Output) -> None:
    """Resolve the broker's jars with Maven into a temporary folder, then rename it.

    The rename makes an interrupted download look absent rather than complete.
    """
    marker = paths.kafka_libs / f"kafka_2.13-{KAFKA_VERSION}.jar"
    if marker.is_file():
        out(f"kafka: {KAFKA_VERSION} jars present in {paths.kafka_libs}")
        return
    mvn = _require_tool("mvn", "Maven, to fetch Kafka's jars (apt-get install maven)")
    staging = paths.kafka_libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    out(f"kafka: fetching Kafka {KAFKA_VERSION} jars from Maven Central into {paths.kafka_libs}")
    argv = [
        mvn, "-q", "-B", "-f", str(DEPLOY_DIR / "pom.xml"),
        f"-Dkafka.version={KAFKA_VERSION}", "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]  # fmt: skip
    began = time.monotonic()
    _run_install_step("kafka", argv, paths.log_file("install-kafka"))
    shutil.rmtree(paths.kafka_libs, ignore_errors=True)
    staging.rename(paths.kafka_libs)
    out(f"kafka: jars fetched in {time.monotonic() - began:.0f}s")


def _install_ferretdb(paths: StackPaths, out: Output) -> None:
    """Build FerretDB from its Go module with deploy/local/build-ferretdb.sh."""
    if os.access(paths.ferretdb_bin, os.X_OK):
        out(f"ferretdb: {FERRETDB_BUILD} binary present at {paths.ferretdb_bin}")
        return
    _require_tool("go", "Go 1.24 or newer, to build FerretDB")
    log = paths.log_file("install-ferretdb")
    out(f"ferretdb: building {FERRETDB_BUILD} from its Go module (a few minutes), log {log}")
    argv = ["bash", str(DEPLOY_DIR / "build-ferretdb.sh"), FERRETDB_VERSION, str(paths.cache), FERRETDB_BUILD]
    began = time.monotonic()
    _run_install_step("ferretdb", argv, log)
    out(f"ferretdb: built in {time.monotonic() - began:.0f}s")


def _run_install_step(name: str, argv: Sequence[str], log: Path) -> None:
    """Run one install command with its output in a log, shown only when it fails."""
    with log.open("w") as sink:
        result = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise StackError(f"{name}: install failed (exit {result.returncode}), end of {log}:\n{tail(log)}")


def _require_tool(name: str, what: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise StackError(f"'{name}' is not on PATH; the stack needs {what}")
    return found
