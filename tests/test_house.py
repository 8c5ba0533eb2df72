"""The rules of the house (README: Layout), checked on every run of the suite.

- Every import points down the layers of ``[tool.importlinter]`` in pyproject.toml
  (import-linter), and no module imports itself through others (no cycles).
- ruff, configured in pyproject.toml, finds nothing.
- Code refers to the project's own documents, never to documents that are not in the
  repository.
- A test module never imports another test module: what tests share lives in
  ``tests/support/`` (and the fixtures of ``tests/conftest.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("offhours", "console", "streams", "edge", "responders", "triage", "promises", "brokers", "schedules", "records")
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_imports_point_down_the_layers() -> None:
    """import-linter keeps its contract: no package imports one above it."""
    result = run(str(BIN / "lint-imports"), "--no-cache")
    assert 0 == result.returncode, result.stdout + result.stderr


def module_cycles() -> list[list[str]]:
    """Groups of modules that import each other (directly or through others), at run time."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_through_others() -> None:
    """No import cycles between modules (a package's __init__ included)."""
    assert [] == module_cycles()


def test_ruff_finds_nothing() -> None:
    """ruff, with the rules in pyproject.toml, is clean on the whole project."""
    result = run(str(BIN / "ruff"), "check", "--no-cache", "--output-format", "concise", ".")
    assert 0 == result.returncode, result.stdout + result.stderr


# Spelled in pieces so that this file does not match itself.
FOREIGN_DOCUMENTS = re.compile(
    "|".join(("CONTR" + r"ACT\s*§", r"\bCONTR" + r"ACT\.md", r"\bPLAT" + r"FORMS\b", r"\bDES" + r"IGN(\.md)?\b", r"\.\./" + "shared"))
)
SOURCES = (*PACKAGES, "tests", "bench", "deploy", "docs")


def test_code_and_docs_cite_only_the_projects_own_documents() -> None:
    """No file refers to a document that is not in the repository (the README and docs/ say it all)."""
    found = []
    files = [ROOT / "README.md", *(path for folder in SOURCES for path in (ROOT / folder).rglob("*") if path.is_file())]
    for path in files:
        if path.suffix not in (".py", ".md", ".j2", ".yaml", ".yml", ".sh", ".toml", ".xml") or "__pycache__" in path.parts:
            continue
        for number, line in enumerate(path.read_text("utf-8", "replace").splitlines(), 1):
            if FOREIGN_DOCUMENTS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert [] == found


# A module of the suite may import tests.conftest and tests.support.*, nothing else of tests/.
TEST_IMPORT = re.compile(r"^\s*(?:from\s+(tests(?:\.\w+)*)\s+import|import\s+(tests(?:\.\w+)*))|^\s*from\s+(\.+\w*)\s+import", re.M)


def test_no_test_module_imports_another() -> None:
    """Shared builders live in tests/support/; a test module never imports one in a tier folder."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for match in TEST_IMPORT.finditer(path.read_text("utf-8")):
            module = match.group(1) or match.group(2) or match.group(3)
            allowed = module == "tests.conftest" or module == "tests.support" or module.startswith("tests.support.")
            if not allowed:
                found.append(f"{path.relative_to(ROOT)}: imports {module}")
    assert [] == found
