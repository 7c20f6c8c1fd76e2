"""Kafka plumbing every service shares: the broker factory and the envelope conventions.

Conventions (design.md, "Topics" and "Delivery and failure"):
- the key is the VIN (approvals: the approval key), so one vehicle stays on one partition;
- the value is the JSON of a pydantic contract carrying ``schema_version``;
- the record id travels as FastStream's correlation id, the schema version and
  the trace context as headers;
- producers wait for all in-sync replicas; consumers commit only after the
  handler finished, and a handler that raises has its message delivered again.
"""

from __future__ import annotations

from typing import Any, TypeVar

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

from shared.settings import CocSettings

M = TypeVar("M", bound=BaseModel)

SCHEMA_VERSION_HEADER = "coc-schema-version"
SERVICE_HEADER = "coc-service"


def make_broker(settings: CocSettings, *, client_id: str, **options: Any) -> KafkaBroker:
    """A broker whose producer waits for every in-sync replica.

    Not the idempotent producer: with several consumers of one process
    publishing at once, aiokafka's idempotent producer was seen to fail with
    OutOfOrderSequenceNumber after a broker restart, an error it never
    recovers from, which stalls the stage for good. A retried send may
    instead arrive twice; every stage deduplicates (record ids as keys,
    deterministic documents), so a duplicate changes nothing.
    """
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        **options,
    )


def subscriber_options(group_id: str, workers: int = 1) -> dict[str, Any]:
    """Options for a subscriber that shares work with its other instances.

    Offsets are committed after the handler returns (AckPolicy.NACK_ON_ERROR
    acks on success and rewinds to the message on an exception), so a process
    killed mid-handler leaves the message to be delivered again.

    With ``workers`` > 1 the subscriber runs that many consumers of the group,
    each on its own partitions: the I/O of one vehicle's message overlaps
    another's, and the messages of one vehicle (one key, one partition) stay
    in order.
    """
    options: dict[str, Any] = {
        "group_id": group_id,
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "auto_offset_reset": "earliest",
    }
    if workers > 1:
        options["max_workers"] = workers
    return options


def envelope_headers(model: BaseModel, *, service: str) -> dict[str, str]:
    """Headers of a published contract: its schema version and the publishing service."""
    version = getattr(model, "schema_version", 1)
    return {SCHEMA_VERSION_HEADER: str(version), SERVICE_HEADER: service}


async def publish(
    broker: KafkaBroker,
    model: BaseModel,
    *,
    topic: str,
    key: str,
    correlation_id: str,
    service: str,
) -> None:
    """Publish a contract with the envelope conventions (key, correlation id, headers)."""
    await broker.publish(
        model,
        topic=topic,
        key=key.encode(),
        correlation_id=correlation_id,
        headers=envelope_headers(model, service=service),
    )


async def raw_body(msg: StreamMessage[Any]) -> bytes:
    """Decoder that hands the handler the bytes as they came.

    Every stage parses its own input with its pydantic contract, so a message
    that breaks the contract becomes a dead letter with a reason instead of a
    decoding error that would be redelivered for ever.
    """
    return msg.body


def parse_as(model: type[M], body: bytes) -> M:
    """Parse a message body with its contract; raises ContractError naming each bad field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise ContractError(describe(exc)) from None


class ContractError(ValueError):
    """A message or request body broke its contract; the text names each field and why."""


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
