"""No function of the product is longer than a reader can hold at once (issue 26).

Its nested functions count in: a factory of closures is one long function however it is split inside.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("services", "shared", "cli", "deploy", "devkit")
MAX_LINES = 120

pytestmark = pytest.mark.unit


def outermost_functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every function not nested in another function (methods included), in source order."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node
        elif isinstance(node, ast.ClassDef | ast.If | ast.Try | ast.With):
            yield from outermost_functions(node)


def too_long(source: str) -> list[tuple[str, int, int]]:
    """Name, first line and length of each outermost function longer than ``MAX_LINES``."""
    found = []
    for function in outermost_functions(ast.parse(source)):
        first = min([function.lineno, *(d.lineno for d in function.decorator_list)])
        length = (function.end_lineno or function.lineno) - first + 1
        if length > MAX_LINES:
            found.append((function.name, first, length))
    return found


def test_the_measure_counts_nested_functions_and_methods() -> None:
    inner = "\n".join(f"        x{i} = {i}" for i in range(MAX_LINES))
    source = f"class C:\n    def outer(self):\n        def inner():\n            pass\n{inner}\n"
    assert [name for name, _, _ in too_long(source)] == ["outer"]
    assert too_long("def short():\n    return 1\n") == []


def test_no_function_of_the_product_is_longer_than_120_lines() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {name} ({length} lines)"
        for folder in CHECKED
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name, line, length in too_long(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "split these: " + "; ".join(offenders)
