"""The files a command reads and writes: each fault one line naming the file (and the line), exit status 2.

pydantic and the contracts are imported inside the functions that need them,
so a command's help never loads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cli.errors import BadInput

if TYPE_CHECKING:
    from pydantic import BaseModel

    from shared.contracts import Approval, BuildRecord

    Model = TypeVar("Model", bound=BaseModel)
else:
    Model = TypeVar("Model")

MAX_INPUT_BYTES = 64_000_000  # a file a command reads whole; larger is refused before it is read


def read_bytes(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    try:
        if path.is_file() and path.stat().st_size > limit:
            raise BadInput(f"cannot read {path}: larger than {limit} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"cannot read {path}: it is a folder") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None


def utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{where}: not UTF-8 (byte {exc.start})") from None


def json_of(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise BadInput(f"{where}: JSON nested too deeply") from None
    except ValueError:  # a number longer than Python converts (4,300 digits)
        raise BadInput(f"{where}: a JSON number too long to read") from None


def parse_model(model: type[Model], data: Any, where: str) -> Model:
    from pydantic import ValidationError

    from shared.contracts.base import reason_of

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(record)'}: {reason_of(err)}" for err in exc.errors()
        )
        raise BadInput(f"{where}: {problems}") from None


def load_json(path: Path) -> Any:
    return json_of(utf8(read_bytes(path), str(path)), str(path))


def load_approvals(path: Path) -> list[Approval]:
    from shared.contracts import Approval

    data = load_json(path)
    items = data if isinstance(data, list) else [data]
    return [parse_model(Approval, item, f"{path} item {i + 1}") for i, item in enumerate(items)]


def load_build(path: Path) -> BuildRecord:
    from shared.contracts import BuildRecord

    return parse_model(BuildRecord, load_json(path), str(path))


def load_builds(path: Path) -> Iterator[BuildRecord]:
    """The builds of a JSON Lines file, or of a file that is one build (``coc ivi import``'s build.json) or a list."""
    from shared.contracts import BuildRecord

    data = read_bytes(path)
    try:
        whole = json.loads(data)
    except (ValueError, RecursionError):  # ValueError: not UTF-8, not JSON, or a number too long
        whole = None  # JSON Lines (or broken: each line says where)
    if isinstance(whole, dict | list):
        items = whole if isinstance(whole, list) else [whole]
        for number, item in enumerate(items, start=1):
            yield parse_model(BuildRecord, item, f"{path} item {number}")
        return
    for number, raw in enumerate(data.splitlines(), start=1):
        line = utf8(raw, f"{path} line {number}")
        if not line.strip():
            continue
        yield parse_model(BuildRecord, json_of(line, f"{path} line {number}"), f"{path} line {number}")


def write_file(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise BadInput(f"{path}: cannot write ({exc.strerror})") from None


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_file(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
