"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from shared.ivi import IviSchema
from shared.settings import CocSettings
from shared.xml import DSIG_NS, parse_bytes


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
