"""Health probes of the stack's processes: each answers quickly whether a process serves requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from deploy.local.layout import Address

T = TypeVar("T")


def split_address(address: str) -> Address:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def kafka_healthy(bootstrap: str, options: Callable[[], dict[str, Any]] | None = None) -> bool:
    """True when the broker answers a metadata request that lists at least one broker.

    ``options`` gives the client's address and security (a cluster node's admin login).
    """
    if not port_open(*split_address(bootstrap.split(",")[0])):
        return False
    with _quiet_logger("aiokafka"):
        try:
            found = options() if options else {"bootstrap_servers": bootstrap}
            return run_coroutine(lambda: asyncio.wait_for(_kafka_brokers(found), 5)) > 0
        except Exception:  # any failure means "not answering yet"
            return False


def run_coroutine(make: Callable[[], Coroutine[object, object, T]]) -> T:
    """Run a coroutine to its end, also when called from code already inside an event loop.

    asyncio.run refuses to nest, so an async caller (a test fixture, a service)
    gets the probe run on a short-lived thread with its own loop instead.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def _kafka_brokers(options: dict[str, Any]) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**options, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return len(cluster.get("brokers", []))
    finally:
        await admin.close()


# Longer than a service's own bound on its checks (2 s, shared.stage), so its 503 arrives in time.
PROBE_TIMEOUT_S = 4.0


def http_healthy(url: str) -> bool:
    """True when an HTTP endpoint (a service's /healthz) answers 2xx; for service specs."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            return 200 <= int(response.status) < 300
    except (OSError, ValueError):
        return False


def http_problem(url: str) -> str | None:
    """What a service's /healthz says is wrong (its stuck subscriptions), or None."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            body = response.read(65_536)
    except urllib.error.HTTPError as exc:
        body = exc.read(65_536)
    except (OSError, ValueError):
        return "does not answer"
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    stuck = answer.get("stuck")
    if stuck:
        return "stuck: " + "; ".join(str(reason) for reason in stuck)
    if answer.get("healthy") is False:
        return "unhealthy: the broker or the database does not answer it"
    return None


def mongo_healthy(url: str) -> bool:
    """True when the MongoDB-compatible server answers a ping."""
    from shared.mongo import make_sync_client
    from shared.settings import CocSettings

    # The services' own client options (TLS, user), so the probe reaches the server as they do.
    client = make_sync_client(
        CocSettings(mongo_url=url), serverSelectionTimeoutMS=1500, connectTimeoutMS=1500
    )
    try:
        client.admin.command("ping")
        return True
    except Exception:  # any failure means "not answering yet"
        return False
    finally:
        client.close()


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence a client library while it probes a server that may not be up yet."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)
