"""Settings shared by every process: addresses, folders and the schema path.

Every value comes from an environment variable with the ``COC_`` prefix (or a
``.env`` file); nothing else in the code hard-codes an address or a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, FilePath, field_validator, model_validator
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
    kafka_compression: Literal["none", "gzip", "lz4", "zstd"] = Field(
        "lz4",
        description="How producers compress their batches: lz4 (cheap, and the certificates' XML shrinks "
        "several-fold, so the brokers copy, encrypt and replicate far fewer bytes), zstd, gzip or none",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        "PLAINTEXT",
        description="How clients reach Kafka: PLAINTEXT (the local single broker), SASL_SSL (SASL over TLS, "
        "the local cluster and most company clusters) or SSL (TLS, with kafka_cert_file and kafka_key_file "
        "for mutual TLS)",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism over SASL_SSL"
    )
    kafka_username: str = Field("", max_length=255, description="SASL user name (the service's principal)")
    kafka_password_file: Path | None = Field(
        None,
        description="File holding the SASL password (its first line); the secret itself never sits in "
        "the environment",
    )
    kafka_ca_file: Path | None = Field(
        None, description="PEM file of the CAs a broker's certificate is checked against (else the system's)"
    )
    kafka_cert_file: Path | None = Field(None, description="PEM client certificate, for mutual TLS")
    kafka_key_file: Path | None = Field(None, description="PEM key of kafka_cert_file, for mutual TLS")
    kafka_idempotence: bool = Field(
        True,
        description="Idempotent producers: a retried send is never written twice (the broker drops the "
        "repeat by its sequence number); with acks=all on every producer",
    )
    kafka_make_topics: bool = Field(
        True,
        description="Make the pipeline's missing topics at start; off where the platform makes them "
        "(the local cluster, a company's topic operator), since a service's principal may not create topics",
    )
    mongo_url: str = Field("mongodb://127.0.0.1:27017", description="MongoDB connection URL")
    mongo_db: str = Field("coc", description="MongoDB database name")
    # How every adapter's client talks to a MongoDB replica set (shared.mongo.client_options). FerretDB,
    # the local default, accepts the write and read concerns and ignores them; a standalone server
    # gets no retryable-write numbers from the driver, so the defaults below work on both.
    mongo_write_concern: str = Field(
        "majority",
        pattern=r"^(majority|[1-9])$",
        description="Write concern w: 'majority' (a write is acknowledged once most members hold it, so a "
        "failover never takes it back) or a number of members",
    )
    mongo_write_timeout_ms: int = Field(
        10_000,
        ge=0,
        le=600_000,
        description="Longest wait for the write concern (wtimeout; 0: no limit); past it the write fails "
        "and the message is retried",
    )
    mongo_read_concern: Literal["local", "majority"] = Field(
        "majority", description="Read concern: 'majority' reads only what a failover cannot take back"
    )
    mongo_read_preference: Literal["primary", "primaryPreferred"] = Field(
        "primary",
        description="Members reads go to; the services read what they have just written, so never a "
        "secondary while the primary answers",
    )
    mongo_retry_writes: bool = Field(True, description="Retry a write once after a failover (replica sets)")
    mongo_retry_reads: bool = Field(True, description="Retry a read once after a failover")
    mongo_tls: bool = Field(False, description="Connect to MongoDB over TLS (implied by a CA file)")
    mongo_tls_ca_file: FilePath | None = Field(
        None, description="PEM file of the CAs that issue the MongoDB servers' certificates"
    )
    mongo_tls_cert_key_file: FilePath | None = Field(
        None, description="PEM file with this client's certificate and key, for servers that ask for one"
    )
    mongo_username: str | None = Field(
        None, description="MongoDB user (SCRAM); needs COC_MONGO_PASSWORD_FILE"
    )
    mongo_password_file: FilePath | None = Field(
        None,
        description="File holding the MongoDB user's password (first line); the password itself is never "
        "a setting, so it stays out of the environment and the logs",
    )
    mongo_auth_source: str = Field("admin", description="Database that holds the MongoDB user")
    mongo_auth_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-1"] = Field(
        "SCRAM-SHA-256", description="How the MongoDB user signs in"
    )
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

    @field_validator("mongo_url")
    @classmethod
    def _no_password_in_url(cls, url: str) -> str:
        if urlparse(url).password:
            raise ValueError(
                "carries a password: give the user as COC_MONGO_USERNAME and the password in the file "
                "COC_MONGO_PASSWORD_FILE names"
            )
        return url

    @model_validator(mode="after")
    def _user_with_password(self) -> CocSettings:
        if (self.mongo_username is None) != (self.mongo_password_file is None):
            raise ValueError("mongo_username and mongo_password_file: set both or neither")
        return self

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
    service_urls: dict[str, str] = Field(
        {},
        description="Base URL of each other service that does not listen beside this one, by name, e.g. "
        '{"status": "http://ecoc-status:8087"} (COC_SERVICE_URLS; the Helm chart sets one per service); '
        "a service not named is at http_host and its port",
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
        return self.service_urls.get(service) or f"http://{self.http_host}:{self.port_of(service)}"

    @field_validator("service_urls")
    @classmethod
    def _known_services_over_http(cls, urls: dict[str, str]) -> dict[str, str]:
        for name, url in urls.items():
            if name not in SERVICE_PORT_OFFSETS:
                raise ValueError(f"{name!r} is no service (one of {', '.join(SERVICE_PORT_OFFSETS)})")
            parsed = urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname or len(url) > 500:
                raise ValueError(f"{name}: {url[:80]!r} is no http(s) URL with a host")
        return {name: url.rstrip("/") for name, url in urls.items()}

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
    consume_ahead: bool = Field(
        True,
        description="A stage reads and handles its next batch while the last one's sends wait for "
        "their acknowledgements (committed in order once acknowledged); false: it waits before reading on",
    )
    consume_commit_ms: int = Field(
        200,
        ge=0,
        le=5_000,
        description="While records flow, a stage commits the batches whose sends were acknowledged "
        "together, at most this often (0: each batch); at once when its topic goes quiet",
    )
    consume_overlap: int = Field(
        64, ge=1, le=1_000, description="VINs of one batch a stage works on at once (each VIN in order)"
    )
    retry_initial_s: float = Field(0.5, description="First wait before a transient fault is retried")
    retry_max_s: float = Field(15.0, description="Longest wait between retries of a transient fault")
