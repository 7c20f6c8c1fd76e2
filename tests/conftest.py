"""Fixtures shared by every test folder."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from lxml import etree

from shared.ivi import IviSchema
from shared.settings import CocSettings
from shared.xml import DSIG_NS, parse_bytes

T = TypeVar("T")


@pytest.fixture(scope="session")
def xsd_path() -> Path:
    return CocSettings().xsd_path()


@pytest.fixture(scope="session")
def schema(xsd_path: Path) -> IviSchema:
    """The official schema, read once for the whole run."""
    return IviSchema.load(xsd_path)


@pytest.fixture(scope="session")
def specimen_bytes(xsd_path: Path) -> bytes:
    """The official M1 specimen, read from beside the configured schema (never copied here)."""
    return (xsd_path.parent / "specimen-M1-CHR.xml").read_bytes()


@pytest.fixture(scope="session")
def unsigned_specimen(specimen_bytes: bytes) -> bytes:
    """The official specimen with its ds:Signature removed (text around it kept)."""
    root = parse_bytes(specimen_bytes)
    signature = root.find(f"{{{DSIG_NS}}}Signature")
    assert signature is not None
    previous = signature.getprevious()
    assert previous is not None
    previous.tail = (previous.tail or "") + (signature.tail or "")
    root.remove(signature)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


async def eventually(
    check: Callable[[], Awaitable[T | None]] | Callable[[], T | None],
    *,
    within_s: float = 10.0,
    every_s: float = 0.05,
    what: str = "the condition",
) -> T:
    """Wait until ``check`` returns something truthy (sync or async) and return it.

    The one way the tests wait for something to happen: it polls, never sleeps a
    guessed time, and fails naming ``what`` (and the last value seen) when it does
    not hold within ``within_s``.
    """
    deadline = time.monotonic() + within_s
    last: object = None
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        last = result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not hold within {within_s} s (last seen: {last!r})")
        await asyncio.sleep(every_s)


def eventually_sync(
    check: Callable[[], T | None],
    *,
    within_s: float = 10.0,
    every_s: float = 0.05,
    what: str = "the condition",
) -> T:
    """``eventually`` for synchronous tests (no event loop running)."""

    async def probe() -> T | None:
        return check()

    return asyncio.run(eventually(probe, within_s=within_s, every_s=every_s, what=what))
