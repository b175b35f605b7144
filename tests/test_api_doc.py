"""docs/API.md is true to the code: every name it lists imports from where it says."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import sb3_expert
from sb3_expert import errors

API = Path(__file__).resolve().parents[1] / "docs" / "API.md"


def _rows() -> list[tuple[str, str]]:
    """``(section module, first cell's name)`` for every table row."""
    module, out = "", []
    for line in API.read_text().splitlines():
        heading = re.match(r"## .*\(`([\w.]+)`\)", line)
        if heading:
            module = heading.group(1)
        cell = re.match(r"\| `([\w.]+)", line)
        if cell and module:
            out.append((module, cell.group(1)))
    return out


def _resolve(dotted: str) -> object:
    """Import ``a.b.c``: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


ROWS = _rows()


def test_the_document_has_rows():
    assert len(ROWS) >= 25, ROWS


@pytest.mark.parametrize(("module", "name"), ROWS, ids=[name for _, name in ROWS])
def test_every_listed_name_imports(module, name):
    if name.startswith("sb3_expert."):
        assert _resolve(name) is not None
        return
    top = name.split(".")[0]  # policy_registry.register -> policy_registry
    assert hasattr(sb3_expert, top), f"{top} is not importable from sb3_expert"
    assert getattr(importlib.import_module(module), top) is getattr(sb3_expert, top)
    _resolve(f"{module}.{name}")


def test_every_error_the_document_names_lives_in_errors():
    text = API.read_text().split("## Errors", 1)[1]
    names = set(re.findall(r"`(\w+Error)`", text)) - {"ValueError", "TypeError", "RuntimeError", "IndexError"}
    names -= {"FileNotFoundError", "FileExistsError"}
    assert names == {n for n in errors.__all__}, names ^ set(errors.__all__)
    for name in names:
        assert issubclass(getattr(errors, name), (ValueError, TypeError))
        assert getattr(sb3_expert, name) is getattr(errors, name), f"{name} is not importable from sb3_expert"


def test_bad_input_raises_this_librarys_errors_not_bare_builtins():
    """The package raises no bare ``ValueError`` / ``TypeError``: every refusal is one of the
    classes in ``sb3_expert.errors`` (their subclasses), so callers can tell it from a bug's."""
    package = Path(sb3_expert.__file__).parent
    bare = [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\braise (ValueError|TypeError)\b", line)
    ]
    assert not bare, f"bare ValueError/TypeError raised at {bare}"
