"""The house stays small: no module over 400 lines, and no function over 60 lines unless its
docstring states why it is long (a sentence containing "Long")."""

from __future__ import annotations

import ast
from pathlib import Path

import streamgrad

PACKAGE = Path(streamgrad.__file__).resolve().parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_400_lines() -> None:
    too_long = {
        str(path.relative_to(PACKAGE)): n
        for path in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, too_long


def test_no_long_function_without_a_stated_reason() -> None:
    too_long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and "Long" not in (ast.get_docstring(node) or ""):
                too_long[f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}"] = length
    assert not too_long, too_long
