"""The project's layering, checked on the source: file formats live in genaannot/io (no other
module opens a file); io imports no drawing or pipeline code; only the CLI and the public API
import pipeline/, nothing imports cli/; and no two modules import each other, directly or
through others (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "genaannot"

#: modules that must not touch files (they get text, bytes or arrays from io): all but io/
NO_FILES = sorted(p for p in PKG.rglob("*.py") if "io" not in p.relative_to(PKG).parts)
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


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from x import y`` counts ``x.y`` when a module)."""
    mods = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            deps.update(t for t in targets if t in mods and t != name)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_only_the_cli_and_the_public_api_use_pipeline_and_nothing_uses_the_cli():
    up = []
    for name, deps in _graph().items():
        for d in deps:
            if d.startswith("genaannot.pipeline") and not name.startswith(("genaannot.pipeline", "genaannot.cli")) \
                    and name != "genaannot":
                up.append(f"{name} -> {d}")
            # ``python -m genaannot`` (genaannot/__main__.py) is the CLI's second entry point
            if d.startswith("genaannot.cli") and not name.startswith(("genaannot.cli", "genaannot.__main__")):
                up.append(f"{name} -> {d}")
    assert up == []
