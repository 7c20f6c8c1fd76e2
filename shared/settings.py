"""Settings shared by every process: addresses, folders and the schema path.

Every value comes from an environment variable with the ``COC_`` prefix (or a
``.env`` file); nothing else in the code hard-codes an address or a folder.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KIT_XSD = PROJECT_ROOT.parent / "shared" / "ivi2" / "IVI-2.0.xsd"
XSD_DOWNLOAD_HINT = (
    "Download 'IVI 2.0 - Initial Vehicle Information XSD Scheme' (IVI-2.0.xsd, with the "
    "xmldsig-core-schema.xsd it imports) from the documentation page of the EUCARIS eCoC "
    "site, put both files in one folder and set COC_IVI_XSD to the IVI-2.0.xsd path."
)


class CocSettings(BaseSettings):
    """Base settings; each service extends it with its own fields."""

    model_config = SettingsConfigDict(env_prefix="COC_", env_file=".env", extra="ignore")

    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_linger_ms: int = Field(
        5, ge=0, le=1_000, description="How long a send waits to share a request to the broker with others"
    )
    kafka_batch_bytes: int = Field(
        512 * 1024,
        ge=16 * 1024,
        le=1_000_000,
        description="Most bytes of sends to one partition that travel as one batch (below the broker's "
        "1 MB message limit, so a batch is never refused for its size)",
    )
    mongo_url: str = Field("mongodb://127.0.0.1:27017", description="MongoDB connection URL")
    mongo_db: str = Field("coc", description="MongoDB database name")
    state_dir: Path = Field(PROJECT_ROOT / ".state", description="Logs, pids and data of the local stack")
    ivi_xsd: Path | None = Field(None, description="Path of the official IVI-2.0.xsd")
    trust_dir: Path | None = Field(
        None,
        description="Folder of PEM certificates a seal is trusted by: the seal certificates themselves "
        "or the CAs that issue them (coc verify)",
    )
    topic_partitions: int = Field(
        6, description="Partitions of each pipeline topic (the most instances a stage can use)"
    )
    topic_replication: int = Field(1, description="Replication factor of the topics (3 in production)")
    topic_min_insync: int = Field(1, description="min.insync.replicas of the topics (2 in production)")
    otel_exporter: str = Field("none", description="Trace exporter: none, console or otlp")
    otel_endpoint: str = Field("http://127.0.0.1:4318/v1/traces", description="OTLP/HTTP endpoint")
    plant_timezone: str = Field(
        "Africa/Johannesburg",
        description="IANA time zone of the plant (COC_PLANT_TIMEZONE): validation compares the calendar "
        "dates a build states with today's date there, and the workspace shows every time in it; "
        "instants are kept in UTC",
    )

    @field_validator("plant_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{name!r} is no IANA time zone known here (e.g. Africa/Johannesburg, UTC)"
            ) from None
        return name

    def plant_zone(self) -> ZoneInfo:
        return ZoneInfo(self.plant_timezone)

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        first = self.kafka_bootstrap.split(",")[0]
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port or 9092)

    @property
    def mongo_host_port(self) -> tuple[str, int]:
        parsed = urlparse(self.mongo_url)
        return parsed.hostname or "127.0.0.1", parsed.port or 27017

    def xsd_path(self) -> Path:
        """The official schema: the configured path, else the reference kit beside the project."""
        candidate = self.ivi_xsd or KIT_XSD
        if not candidate.is_file():
            raise FileNotFoundError(f"IVI 2.0 schema not found at {candidate}. {XSD_DOWNLOAD_HINT}")
        return candidate


SERVICE_PORT_OFFSETS = {
    "intake": 1,
    "validation": 2,
    "render": 3,
    "signing": 4,
    "delivery": 5,
    "archive": 6,
    "status": 7,
    "workspace": 8,
}


class ServiceSettings(CocSettings):
    """What every service process adds: its HTTP address and the addresses of the others."""

    http_host: str = Field("127.0.0.1", description="Address the service's HTTP server binds")
    http_port: int = Field(0, description="Port of this service's HTTP server (0: port_base + its offset)")
    port_base: int = Field(
        8080,
        description="Service ports: intake +1, validation +2, render +3, signing +4, delivery +5, archive +6, "
        "status +7, workspace +8",
    )

    http_keep_alive_s: int = Field(
        75,
        gt=5,
        le=3600,
        description="Seconds the HTTP server keeps an idle connection open; longer than any client's own idle "
        "expiry (httpx's: 5 s), so a client never sends on a connection the server is closing at that moment",
    )

    gc_young: int = Field(
        10_000,
        ge=700,
        le=1_000_000,
        description="New objects between two collections of the youngest generation in a service process "
        "(Python's default: 700); with the objects of the start frozen, the collector took 1.0-1.1 CPU s "
        "of signing's and render's in a 20,000-build run instead of 3.4 and 4.9",
    )

    def port_of(self, service: str) -> int:
        return self.port_base + SERVICE_PORT_OFFSETS[service]

    def url_of(self, service: str) -> str:
        return f"http://{self.http_host}:{self.port_of(service)}"

    @property
    def intake_url(self) -> str:
        return self.url_of("intake")

    @property
    def status_url(self) -> str:
        return self.url_of("status")

    @property
    def archive_url(self) -> str:
        return self.url_of("archive")

    @property
    def delivery_url(self) -> str:
        return self.url_of("delivery")

    stall_after_s: float = Field(
        120.0,
        gt=0,
        description="A subscription failing, or in one batch, this long makes /healthz answer 503",
    )
    consume_batch: int = Field(
        500, ge=1, le=10_000, description="Most messages a stage takes from its topic in one batch"
    )
    consume_wait_ms: int = Field(
        500,
        ge=1,
        le=5_000,
        description="Longest wait of one poll of a stage's topic while nothing comes; a record that "
        "arrives ends the wait at once, and the batch is what was fetched by then",
    )
    consume_gather_ms: int = Field(
        40,
        ge=0,
        le=1_000,
        description="How long the broker may hold a stage's fetch to gather more records (0: answer "
        "with the first); at a line's pace a stage then handles a few records per batch instead of one",
    )
    consume_overlap: int = Field(
        64, ge=1, le=1_000, description="VINs of one batch a stage works on at once (each VIN in order)"
    )
    retry_initial_s: float = Field(0.5, description="First wait before a transient fault is retried")
    retry_max_s: float = Field(15.0, description="Longest wait between retries of a transient fault")
