"""The package's standing promises about its own shape: the layers of
pyproject.toml's import-linter contract hold (no import cycles), SQL is spoken only
by the store, and modules and functions stay short enough to read."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sparring"
STORE = PACKAGE / "store"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# A statement of SQL: the driver's import, or a keyword that opens a statement.
SQL = re.compile(r"\bimport sqlite3\b|\bfrom sqlite3\b|\b(SELECT|INSERT|UPDATE|DELETE FROM|CREATE TABLE|ALTER TABLE|PRAGMA)\b\s")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_layers_contract_holds():
    """lint-imports checks pyproject.toml's layers contract over the whole package."""
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run([lint], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def sql_outside_store(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.parent == package / "store":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SQL.search(line):
                found.append(f"{path.relative_to(package)}:{number}: {line.strip()}")
    return found


def test_sql_is_spoken_only_by_the_store():
    assert sql_outside_store(PACKAGE) == []
    assert SQL.search((STORE / "schema.py").read_text()), "the check must see the store's own SQL"


def test_the_sql_check_finds_sql_elsewhere(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "schema.py").write_text('db.execute("SELECT 1")\n')
    (tmp_path / "trainer.py").write_text('import sqlite3\nstore.db.execute("DELETE FROM turns WHERE x")\n')
    assert len(sql_outside_store(tmp_path)) == 2


def long_functions(source: str) -> list[str]:
    """Functions over MAX_FUNCTION_LINES lines with no `# long:` comment saying why."""
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = lines[node.lineno - 1 : node.end_lineno]
            if len(body) > MAX_FUNCTION_LINES and not any(line.strip().startswith("# long:") for line in body):
                out.append(f"{node.name} ({len(body)} lines)")
    return out


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_are_short(path):
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{path.name} has over {MAX_MODULE_LINES} lines: split it by concern"
    assert long_functions(source) == [], "split these, or say why in a '# long:' comment"


def test_the_length_check_finds_a_long_function():
    long_body = "\n".join(f"    x = {i}" for i in range(70))
    assert long_functions(f"def f():\n{long_body}\n") == ["f (71 lines)"]
    assert long_functions(f"def f():\n    # long: a table\n{long_body}\n") == []
