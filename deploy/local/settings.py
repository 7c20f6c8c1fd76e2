"""Settings only the local stack reads: where it keeps binaries, and its extra ports.

The same ``COC_`` environment variables as before, so nothing changes for a user;
the services never read these, so they live here and not in ``shared.settings``.
The state folder itself (``COC_STATE_DIR``) stays a shared setting: every process
reads the generated tokens from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from shared.settings import PROJECT_ROOT, ServiceSettings

# Each stage reads its topics in one consumer group; more instances than the six partitions
# of a topic would sit idle, and instance k's ports (+10 each) must not reach the next range.
MAX_REPLICAS = 6


class StackSettings(ServiceSettings):
    """What ``coc stack`` needs besides the addresses every process knows."""

    cache_dir: Path = Field(PROJECT_ROOT / ".cache", description="Downloaded and built stack binaries")
    kafka_controller_port: int = Field(
        9093, description="Port of the local Kafka's KRaft controller listener (same host)"
    )
    ferretdb_gogc: int = Field(
        400,
        ge=50,
        le=2_000,
        description="GOGC of the local FerretDB: heap growth, in percent of the live heap, between two "
        "collections of its Go runtime (Go's default: 100). At 400 a fresh 20,000-build run took FerretDB "
        "26.3 CPU s until at rest and 31.6 until the read model was current, against 29.9 and 39.2 at 100; "
        "its peak RSS 121 MB against 86",
    )
    ferretdb_cores: int = Field(
        1,
        ge=1,
        le=256,
        description="GOMAXPROCS of the local FerretDB: the cores its Go code runs on at once. SQLite "
        "writes one transaction at a time anyway; with 2 on a 2-core machine its idle workers spun "
        "looking for work beside the pipeline (a fresh 20,000-build run: 20.0 CPU s until at rest "
        "at 1 against 27.2-27.4 at 2)",
    )
    ferretdb_debug_addr: str = Field(
        "-", description="Local FerretDB's metrics/debug HTTP address, host:port; '-' disables it"
    )
    stack_brokers: Literal[1, 3] = Field(
        1,
        description="Kafka brokers `coc stack up` runs (COC_STACK_BROKERS, or --brokers): 1 (PLAINTEXT), or 3 "
        "(KRaft quorum of three, replication 3, min in-sync 2, SASL_SSL with SCRAM and ACLs per service)",
    )
    monitoring_port: int = Field(
        0,
        ge=0,
        le=65_535,
        description="Port of the Prometheus `coc stack up --monitoring` starts (0: the port base + 1010, 9090)",
    )
    monitoring_scrape_s: int = Field(
        15, ge=1, le=300, description="Seconds between two scrapes (and rule evaluations) of that Prometheus"
    )
    monitoring_rules: Path | None = Field(
        None, description="Alert rules file of that Prometheus (default: deploy/monitoring/alerts.yml)"
    )
    replicas: int = Field(
        1,
        ge=1,
        le=MAX_REPLICAS,
        description="Instances of each service `coc stack up` runs (COC_REPLICAS, or --replicas); instance k "
        "listens on its service's port + 10 * (k - 1): 8081-8088, then 8091-8098",
    )
