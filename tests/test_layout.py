"""The package layout's import rules, read from the source (lazy imports inside functions count too).

- `gift/` and `rewards/` never import `stages`; `rewards/` never imports `gift` (it stays importable
  without torch, tests/rewards/test_import.py).
- Inside `stages/`, the subpackages are layered train -> evaluation -> reports: a subpackage imports
  only the ones before it (and the top-level modules such as `stages.cli`); `pipeline.py` ties them together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("train", "evaluation", "reports")


def imported_modules(source: str, package: str) -> set[str]:
    """Every module name an `import` or `from ... import` in `source` names (relative to `package` resolved)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            names.add(".".join(p for p in (base, node.module or "") if p))
    return names


def _imports_of(path: Path) -> set[str]:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    return imported_modules(path.read_text(encoding="utf-8"), package)


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _importing(package: str, forbidden: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _files(package)
        for name in sorted(_imports_of(path))
        if name == forbidden or name.startswith(forbidden + ".")
    ]


@pytest.mark.parametrize("package, forbidden", [("gift", "stages"), ("rewards", "stages"), ("rewards", "gift")])
def test_core_packages_do_not_import_upwards(package, forbidden):
    assert _files(package), package
    assert _importing(package, forbidden) == []


@pytest.mark.parametrize("index", range(len(LAYERS)))
def test_stage_subpackages_import_only_earlier_layers(index):
    layer = LAYERS[index]
    later = [f"stages.{name}" for name in LAYERS[index + 1 :]] + ["stages.pipeline", "stages.pipeline_config"]
    assert [problem for name in later for problem in _importing(f"stages/{layer}", name)] == []


def test_the_rule_sees_lazy_and_relative_imports():
    source = (
        "def f():\n    from stages.reports import curves\n    from . import rl\n    from ..evaluation.score import x\n"
    )
    assert imported_modules(source, "stages.train") == {"stages.reports", "stages.train", "stages.evaluation.score"}


def test_training_modules_do_not_import_the_cli():
    """The stages read their configs through `stages.config_args`; the entry point imports them, not back."""
    assert _importing("stages/train", "stages.cli") == []
    assert _importing("stages/evaluation", "stages.cli") == []
