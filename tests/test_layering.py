"""The project rule, checked on the source: file formats live in genaannot/io; compute modules
(tokenize, models, plot, hub text) open no files; io imports no drawing or pipeline code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "genaannot"

#: modules that must not touch files (they get text, bytes or arrays from io)
NO_FILES = sorted([PKG / "tokenize.py", PKG / "plot.py", PKG / "hub.py", *(PKG / "models").glob("*.py")])
#: calls that open, read or write a file
FILE_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "from_file", "load_file", "save_file"}
FILE_MODULE_CALLS = {("json", "load"), ("json", "dump"), ("torch", "load"), ("torch", "save"),
                     ("np", "load"), ("np", "save"), ("np", "savez"), ("np", "savez_compressed")}
#: what io must not import (drawing, and the layers above it)
NOT_FROM_IO = ("genaannot.plot", "genaannot.pipeline", "genaannot.cli", "genaannot.evaluate", "genaannot.train",
               "genaannot.predict", "genaannot.interpret", "matplotlib")


def _file_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in FILE_CALLS:
            found.append(f"{path.name}:{node.lineno}: {f.id}()")
        elif isinstance(f, ast.Attribute):
            owner = f.value.id if isinstance(f.value, ast.Name) else None
            if f.attr in FILE_CALLS - {"open"} or (owner, f.attr) in FILE_MODULE_CALLS:
                found.append(f"{path.name}:{node.lineno}: .{f.attr}()")
    return found


def _imports(source: str, package: str) -> list[str]:
    """Absolute names of everything ``source`` (a module of ``package``) imports, nested imports too."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                out.append(".".join(base + ([node.module] if node.module else [])))
            else:
                out.append(node.module or "")
    return out


def test_the_checker_sees_file_access(tmp_path):
    p = tmp_path / "x.py"
    p.write_text("import json\nfrom pathlib import Path\nPath('a').read_text()\njson.load(fh)\nopen('b')\n")
    assert [s.split(": ")[1] for s in _file_calls(p)] == [".read_text()", ".load()", "open()"]
    src = "def f():\n    from ..plot import Call\n    from .tracks import x\nimport matplotlib.pyplot\n"
    assert _imports(src, "genaannot.io") == ["matplotlib.pyplot", "genaannot.plot", "genaannot.io.tracks"]


@pytest.mark.parametrize("path", NO_FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_compute_modules_open_no_files(path):
    assert _file_calls(path) == []


@pytest.mark.parametrize("path", sorted((PKG / "io").glob("*.py")), ids=lambda p: p.name)
def test_io_imports_no_drawing_or_pipeline_code(path):
    bad = [m for m in _imports(path.read_text(), "genaannot.io") if m.startswith(NOT_FROM_IO)]
    assert bad == []
