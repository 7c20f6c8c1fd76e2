"""The two processes under the services: FerretDB on SQLite and one KRaft Kafka node."""

from __future__ import annotations

import base64
import os
import shutil
import string
import subprocess
import uuid
from functools import partial
from pathlib import Path

from deploy.local.health import kafka_healthy, mongo_healthy, split_address
from deploy.local.layout import DEPLOY_DIR, Address, ProcessSpec, StackError, StackPaths
from deploy.local.settings import StackSettings

# Kafka's JVM options, with a small fixed heap for a laptop. Startup is ~4-8 s on two cores,
# mostly class loading; C1-only JIT, SerialGC and an AppCDS archive were each tried and saved
# under a second, within the noise. The parallel collector instead of Kafka's own choice (G1,
# 20 ms pause goal), whose concurrent marking runs beside the broker's threads on two cores:
# in fresh 20,000-build runs the broker took 11.5 and 11.7 CPU seconds against 14.9-15.6.
KAFKA_JVM_OPTIONS = (
    "-Xmx512m",
    "-Xms512m",
    "-server",
    "-XX:+UseParallelGC",
    "-Djava.awt.headless=true",
)


def stack_specs(settings: StackSettings) -> list[ProcessSpec]:
    """The base stack in start order; ``down`` stops in the reverse order.

    Kafka is one node, or with ``--brokers 3`` (remembered in the state folder) the
    three nodes of ``deploy.local.cluster``.
    """
    from deploy.local.cluster import broker_count, cluster_specs

    paths = StackPaths.of(settings)
    count = broker_count(settings)
    kafka = [kafka_spec(settings, paths)] if count == 1 else cluster_specs(settings, paths, count)
    return [ferretdb_spec(settings, paths), *kafka]


def kafka_spec(settings: StackSettings, paths: StackPaths) -> ProcessSpec:
    """One KRaft node, broker and controller, on settings.kafka_bootstrap."""
    host, port = settings.kafka_host_port
    config = paths.kafka_config_dir / "server.properties"
    argv = (
        java(),
        *KAFKA_JVM_OPTIONS,
        f"-Dkafka.logs.dir={paths.kafka_logs}",
        f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.xml'}",
        "-cp",
        f"{paths.kafka_libs}/*",
        "kafka.Kafka",
        str(config),
    )
    return ProcessSpec(
        name="kafka",
        argv=argv,
        addresses=((host, port), (host, settings.kafka_controller_port)),
        health=partial(kafka_healthy, settings.kafka_bootstrap),
        prepare=partial(prepare_kafka, settings, paths),
        logs=(paths.kafka_logs / "server.log",),
    )


def ferretdb_spec(settings: StackSettings, paths: StackPaths) -> ProcessSpec:
    """FerretDB on its SQLite backend, listening where settings.mongo_url points."""
    host, port = settings.mongo_host_port
    addresses: list[Address] = [(host, port)]
    debug = settings.ferretdb_debug_addr
    if debug not in ("", "-"):
        addresses.append(split_address(debug))
    argv = (
        str(paths.ferretdb_bin),
        "--handler=sqlite",
        f"--sqlite-url=file:{paths.ferretdb_state / 'data'}/",
        f"--state-dir={paths.ferretdb_state}",
        f"--listen-addr={host}:{port}",
        f"--debug-addr={debug or '-'}",
        "--telemetry=disable",
        "--log-format=text",
        "--log-level=warn",  # INFO logs every connection, each health probe included
    )
    return ProcessSpec(
        name="ferretdb",
        argv=argv,
        addresses=tuple(addresses),
        health=partial(mongo_healthy, settings.mongo_url),
        env={"GOGC": str(settings.ferretdb_gogc), "GOMAXPROCS": str(settings.ferretdb_cores)},
        prepare=partial(_make_dirs, paths.ferretdb_state / "data"),
    )


def prepare_kafka(settings: StackSettings, paths: StackPaths) -> None:
    """Render server.properties from settings and format the data folder the first time."""
    host, port = settings.kafka_host_port
    paths.kafka_config_dir.mkdir(parents=True, exist_ok=True)
    template = string.Template((DEPLOY_DIR / "server.properties.template").read_text())
    config = paths.kafka_config_dir / "server.properties"
    config.write_text(
        template.substitute(
            host=host,
            port=port,
            controller_host=host,
            controller_port=settings.kafka_controller_port,
            data_dir=paths.kafka_data,
        )
    )
    if not (paths.kafka_data / "meta.properties").is_file():
        _format_kafka_storage(paths, config)


def _format_kafka_storage(paths: StackPaths, config: Path) -> None:
    """Format the KRaft log folder as a standalone controller quorum of one."""
    argv = [
        java(), "-Xmx256m", f"-Dkafka.logs.dir={paths.kafka_logs}",
        f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.xml'}",
        "-cp", f"{paths.kafka_libs}/*", "kafka.tools.StorageTool",
        "format", "--standalone", "-t", cluster_id(paths.kafka_config_dir), "-c", str(config),
    ]  # fmt: skip
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise StackError(f"kafka: cannot run {argv[0]} (Java 17 or newer is needed): {exc}") from exc
    if result.returncode != 0:
        raise StackError(f"kafka: formatting {paths.kafka_data} failed:\n{result.stdout}{result.stderr}")


def cluster_id(folder: Path) -> str:
    """The cluster id, made once and kept in the state folder.

    Kafka's format is a URL-safe base64 UUID without padding; like Kafka's own
    generator this avoids ids starting with '-', which read as a CLI option.
    """
    stored = folder / "cluster-id"
    if stored.is_file():
        return stored.read_text().strip()
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    stored.write_text(cluster_id + "\n")
    return cluster_id


def java() -> str:
    """JAVA_HOME's java, else the one on PATH; a missing one fails at start, not in status."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java") or "java"


def _make_dirs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
