"""Publishing build records to coc.builds.v1 as a factory MES does, and VINs of one's own.

One message per build, key = VIN, acks=all: the one publisher ``coc publish --kafka``,
``coc demo``, the bench and the end-to-end tests use. A VIN tag gives a sample set
VINs no other run used, so runs on one stack do not see each other's records.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from shared import topics
from shared.contracts import BuildRecord
from shared.vin import ALPHABET, check_digit

VIN_ALPHABET = "".join(sorted(ALPHABET))  # ISO 3779: no I, O, Q
TAG_INDEX = 9  # VIN position 10, the model-year code: no rule reads it, the serial stays unique
PUBLISH_CHUNK = 500
Progress = Callable[[int, int], None]  # (sent so far, total), after each chunk

# --- VINs of one's own -----------------------------------------------------------------------


def retag(build: BuildRecord, tag: str) -> BuildRecord:
    """The build with ``tag`` at VIN position 10, so sets made with different tags share no VIN.

    Within one sample set the VIN stays unique (plant code and serial are kept).
    A well-formed VIN gets its ISO 3779 check digit again, so the records stay
    clean whatever check-digit mode the validation runs with; a VIN with a
    planted defect (a letter O) keeps its defect.
    """
    if len(tag) != 1 or tag not in VIN_ALPHABET:
        raise ValueError(f"a VIN tag is one character of {VIN_ALPHABET}, not {tag!r}")
    vin = build.vin[:TAG_INDEX] + tag + build.vin[TAG_INDEX + 1 :]
    if len(vin) == 17 and set(vin) <= set(VIN_ALPHABET):
        vin = vin[:8] + check_digit(vin) + vin[9:]
    return build.model_copy(update={"vin": vin})


def retag_all(builds: Iterable[BuildRecord], tag: str) -> list[BuildRecord]:
    tagged = [retag(build, tag) for build in builds]
    vins = Counter(build.vin for build in tagged)
    doubles = [vin for vin, n in vins.items() if n > 1]
    if doubles:
        raise ValueError(f"tagging made VINs collide: {doubles[:5]}")
    return tagged


def fresh_tag(rng: random.Random) -> str:
    """A VIN tag the sample generator never writes (its model-year codes are T and V)."""
    return rng.choice([c for c in VIN_ALPHABET if c not in "TV"])


# --- publishing as an MES does ---------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One raw message for coc.builds.v1 (a test may send bytes no contract allows)."""

    value: bytes
    key: bytes | None
    partition: int | None = None

    @classmethod
    def of(cls, build: BuildRecord) -> Message:
        return cls(build.model_dump_json().encode(), build.vin.encode())

    @classmethod
    def of_line(cls, line: str) -> Message:
        """A line of builds.jsonl as it is, keyed by its VIN (upper case; empty when it has none)."""
        return cls(line.encode(), vin_of(line).encode())


def vin_of(line: str) -> str:
    try:
        vin = json.loads(line).get("vin")
    except (ValueError, AttributeError):
        return ""
    return vin.upper() if isinstance(vin, str) else ""


async def publish(
    bootstrap: str,
    messages: Sequence[Message],
    progress: Progress | None = None,
    topic: str = topics.BUILDS,
    rate: float = 0.0,
) -> list[tuple[float, int]]:
    """Publish in order, acks=all; per message the wall-clock time it was sent and its partition.

    With ``rate`` (messages per second) the sends are paced the way a plant's line
    produces builds; without it everything goes out as fast as the broker takes it.
    """
    from aiokafka import AIOKafkaProducer

    from shared.kafka import options_for

    producer = AIOKafkaProducer(**options_for(bootstrap), acks="all", enable_idempotence=True)
    await producer.start()
    sent: list[tuple[float, int]] = []
    began = time.monotonic()
    try:
        for start in range(0, len(messages), PUBLISH_CHUNK):
            chunk = messages[start : start + PUBLISH_CHUNK]
            times, futures = [], []
            for number, message in enumerate(chunk, start):
                if rate > 0:
                    await asyncio.sleep(max(0.0, began + number / rate - time.monotonic()))
                times.append(time.time())
                futures.append(
                    await producer.send(topic, message.value, key=message.key, partition=message.partition)
                )
            metadata = await asyncio.gather(*futures)
            sent += [(t, m.partition) for t, m in zip(times, metadata, strict=True)]
            if progress is not None:
                progress(len(sent), len(messages))
    finally:
        await producer.stop()
    return sent


async def publish_builds(
    bootstrap: str, builds: Sequence[BuildRecord], progress: Progress | None = None, rate: float = 0.0
) -> dict[str, float]:
    """One message per build, key = VIN; the time each VIN was published."""
    sent = await publish(bootstrap, [Message.of(build) for build in builds], progress, rate=rate)
    return {build.vin: at for build, (at, _partition) in zip(builds, sent, strict=True)}


def progress_lines(say: Callable[[str], None], what: str = "published") -> Progress:
    """A progress callback that says ``published N/M`` once a chunk is out, when there is more than one."""

    def report(done: int, total: int) -> None:
        if total > PUBLISH_CHUNK:
            say(f"{what} {done}/{total}")

    return report
