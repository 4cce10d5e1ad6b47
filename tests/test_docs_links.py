"""Nothing in the repository points outside it, and every docs page it names exists.

A user who clones the repository must be able to follow every reference: the team's working notes
(the algorithm spec, the calibration notes, the style notes) are not part of it, so no tracked file may
name them; the algorithm reference is `docs/algorithms.md`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".txt", ".sh"}
# Files of the team's notes that live outside this repository (built from pieces so this file does not
# match itself).
OUTSIDE = [
    "ALGORITHMS" + ".md",
    "EMBEDDED-" + "CALIBRATION",
    "shared" + "/spec",
    "STYLE" + ".md",
    "seed-gift-" + "paper-summary",
]
DOCS_PATH = re.compile(r"docs/[A-Za-z0-9_./-]+?\.md")


def _tracked_files() -> list[Path]:
    """The repository's text files: `git ls-files` in a checkout, else a walk that skips the virtualenv."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        paths = [ROOT / line for line in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in ROOT.rglob("*") if not {".venv", ".git"} & set(p.relative_to(ROOT).parts)]
    return [p for p in paths if p.suffix in TEXT_SUFFIXES and p.is_file()]


def outside_references(text: str) -> list[str]:
    """The names of outside files that `text` mentions."""
    return [name for name in OUTSIDE if name in text]


def missing_docs(text: str, root: Path = ROOT) -> list[str]:
    """`docs/*.md` paths named in `text` that do not exist under `root`."""
    return sorted({path for path in DOCS_PATH.findall(text) if not (root / path).is_file()})


def test_the_checks_catch_what_they_should(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "sampler.md").write_text("x")
    gone = "docs/" + "gone.md"  # spelled in two parts so this file does not name a missing page itself
    text = f"see ALGORITHMS.md §3 and EMBEDDED-CALIBRATION.md; docs/sampler.md, `{gone}`, docs/img/a.png"
    assert outside_references(text) == ["ALGORITHMS.md", "EMBEDDED-CALIBRATION"]
    assert missing_docs(text, tmp_path) == [gone]
    assert outside_references("docs/algorithms.md §4") == [] and missing_docs("docs/sampler.md", tmp_path) == []


def test_no_file_refers_to_files_outside_the_repository():
    files = _tracked_files()
    assert len(files) > 50  # the listing found the tree
    me = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}: {', '.join(names)}"
        for path in files
        if path.resolve() != me
        if (names := outside_references(path.read_text(encoding="utf-8", errors="replace")))
    ]
    assert not offenders, "files naming notes outside the repository (point to docs/algorithms.md):\n" + "\n".join(
        offenders
    )


@pytest.mark.parametrize("kind", ["code", "readme"])
def test_docs_pages_named_in_code_and_readme_exist(kind):
    """Docstrings/comments of every .py file and the README: each `docs/*.md` they name is there."""
    files = [p for p in _tracked_files() if (p.suffix == ".py" if kind == "code" else p.name == "README.md")]
    assert files
    broken = [
        f"{path.relative_to(ROOT)}: {', '.join(missing)}"
        for path in files
        if (missing := missing_docs(path.read_text(encoding="utf-8", errors="replace")))
    ]
    assert not broken, "docs pages that do not exist:\n" + "\n".join(broken)


def test_algorithms_page_links_resolve():
    """The algorithm reference names only pages and code files that exist."""
    text = (ROOT / "docs" / "algorithms.md").read_text(encoding="utf-8")
    assert missing_docs(text) == []
    code = set(re.findall(r"`((?:gift|stages|rewards|tests|configs)/[A-Za-z0-9_./-]+\.(?:py|yaml))`", text))
    assert code and not [path for path in sorted(code) if not (ROOT / path).is_file()]
