"""The package's shape: no import cycle (function-level imports included), small modules and
thin pages, and the light modules stay light (no TensorFlow on import)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_PAGE_LINES = 120


def brat_modules() -> dict[str, Path]:
    modules = {}
    for path in (ROOT / "brat").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the brat modules it imports anywhere in its body (package `brat` itself aside)."""
    modules = brat_modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target not in {name, "brat"}:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = import_graph()
    assert cycles(graph) == []
    # The check sees function-level imports: a planted cycle is found.
    planted = {**graph, "brat.settings": graph["brat.settings"] | {"brat.model_folder"}}
    assert ["brat.model_folder", "brat.settings"] in cycles(planted)


def test_modules_are_small_and_pages_thin() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "brat").rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
    pages = [p for p in (ROOT / "app_pages").glob("*.py") if not p.stem.endswith(("ui", "charts"))]
    assert len(pages) == 6
    thick = {p.name: n for p in pages if (n := len(p.read_text().splitlines())) > MAX_PAGE_LINES}
    assert thick == {}


@pytest.mark.parametrize(
    "module",
    ["brat.model_folder", "brat.evaluation.model_card", "brat.training.config", "app_pages.ui"],
)
def test_light_modules_do_not_load_tensorflow(module: str) -> None:
    code = f"import sys, {module}; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
