"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import CocSettings


@pytest.fixture(scope="session")
def xsd_path() -> Path:
    return CocSettings().xsd_path()


@pytest.fixture(scope="session")
def specimen_bytes(xsd_path: Path) -> bytes:
    """The official M1 specimen, read from beside the configured schema (never copied here)."""
    return (xsd_path.parent / "specimen-M1-CHR.xml").read_bytes()
