"""The import graph of gift/, stages/ and rewards/ has no cycle, and no function in them is over 60 lines.

Edges come from every `import` in the source, lazy ones inside functions included: a lazy import breaks a
cycle at import time only, the two modules still depend on each other. `from package import name` is an
edge to `package.name` when that is a module of the repository, else to `package`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_layout import ROOT, imported_modules

PACKAGES = ("gift", "stages", "rewards")
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _targets(node: ast.AST, package: str, modules: set[str]) -> set[str]:
    """The repository modules one import statement depends on."""
    out = set()
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        (base,) = imported_modules(ast.unparse(node), package) or {""}
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    else:
        return out
    for name in names:
        while name and name not in modules:  # `import a.b.c` of a name that is not a module: its package
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the repository modules it imports (itself excluded)."""
    sources = _sources()
    modules = set(sources)
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            edges |= _targets(node, package, modules)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as `[a, b, ..., a]`, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges into a package's `__init__` from its own submodules are how Python loads packages (a
    submodule's import runs its package first), not a dependency: drop them."""
    return {m: {t for t in edges if not m.startswith(t + ".")} for m, edges in graph.items()}


def test_find_cycle_sees_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_resolves_lazy_and_from_imports():
    graph = import_graph()
    assert "rewards.registry" in graph["stages.evaluation.score"] or "rewards" in graph["stages.evaluation.score"]
    assert "gift.sampler" in graph["stages.evaluation.evaluate"]  # imported inside a function


def test_no_import_cycle():
    assert find_cycle(_without_package_inits(import_graph())) is None


# The layers above the run folders (`stages/runs/`), which training, evaluation, the reports and the pipeline use.
ABOVE_RUN_FOLDERS = ("stages.train", "stages.evaluation", "stages.reports", "stages.pipeline", "stages.pipeline_config")


def arrows_into(graph: dict[str, set[str]], package: str, above: tuple[str, ...]) -> list[str]:
    """`module -> target` for every import of a module of `package` into one of the `above` packages or modules."""
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module == package or module.startswith(package + ".")
        for target in targets
        if any(target == a or target.startswith(a + ".") for a in above)
    )


def test_arrows_into_sees_an_arrow_back_up():
    graph = {"stages.runs.guard": {"stages.train.lora", "gift.checkpoint"}, "stages.train.rl": {"stages.runs.guard"}}
    assert arrows_into(graph, "stages.runs", ABOVE_RUN_FOLDERS) == ["stages.runs.guard -> stages.train.lora"]
    assert arrows_into({"stages.runs.x": {"stages.pipeline_guard2"}}, "stages.runs", ("stages.pipeline",)) == []


def test_run_folders_import_nothing_from_the_layers_above():
    """stages/runs/ is the floor the commands stand on: they import it, it imports none of them."""
    assert arrows_into(import_graph(), "stages.runs", ABOVE_RUN_FOLDERS) == []


def long_functions(limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """`path:line name (N lines)` of every function or method longer than `limit` lines."""
    out = []
    for path in _sources().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_no_function_over_60_lines():
    assert long_functions() == []


def test_long_functions_finds_a_long_one():
    assert long_functions(limit=5)  # the rule reads real code: many functions exceed 5 lines
