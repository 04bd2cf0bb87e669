"""The benchmark command still works (CI runs --quick; nothing here asserts a time)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.test_cli import CHILD_ENV, CLI

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Every row of operations.md's table that needs the real catalog (a quick run uses smaller catalogs).
CATALOG_FIGURES = (
    "search in process p95, 5,440 items",
    "search in process p95, 20,000 items",
    "search in process p95, 1-2 character queries",
    "search over HTTP, 5,440 items, 8 concurrent clients, rate",
    "search over HTTP, 5,440 items, 8 concurrent clients, p95",
    "search p95 while a 20,000 refresh runs, over idle p95",
    "refresh from JSON lines, 20,000 items",
    "resident memory of serve with 20,000 items, idle",
    "start to listening (serve, catalog present)",
)


def test_bench_quick_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run([*CLI, "bench", "--quick", "--json", str(out), "--data", str(DATA)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env=CHILD_ENV, check=False)
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())["figures"]
    assert all(set(figure) == {"name", "value", "unit", "target", "ok"} for figure in figures)
    names = [figure["name"] for figure in figures]
    assert any(name.startswith("marathon preview") for name in names)
    assert all(name in result.stdout for name in names)
    if DATA.exists():
        assert any(name.startswith("episode parsing") for name in names)
    if (DATA / "catalog-420grindhouse.jsonl").exists():
        for figure in CATALOG_FIGURES:
            assert any(name.startswith(figure) for name in names), figure
