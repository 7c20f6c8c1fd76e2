"""A service process: its name on the events it emits, its port, its garbage collector."""

from __future__ import annotations

import gc
import os
import socket

from shared.settings import ServiceSettings


def settle_collector(young: int) -> None:
    """Tune the cycle collector of a service process, once its app is built.

    The ~90,000 objects of the imports and the app (FastAPI, FastStream,
    pydantic's schemas, lxml's schema) live as long as the process, yet every
    full collection walked them again: 130-170 ms each, 1.9 CPU s of signing's
    and 3.0 of render's in a 20,000-build run. Frozen, they are left out. A
    batch makes and drops objects by the hundred thousand, nearly all freed by
    their counts; collecting the youngest generation every ``young`` new
    objects instead of every 700 spares most of the passes over those that
    live through a batch.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


def instance_name(stage: str) -> str:
    """Who emitted an event: the stage, the host and the process."""
    return f"{stage}@{socket.gethostname()}:{os.getpid()}"


def port_of(stage: str, settings: ServiceSettings) -> int:
    return settings.http_port or settings.port_of(stage)
