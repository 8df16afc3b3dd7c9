"""The package layout is the data flow: imports point only to earlier stages, and the light entry points stay light.

Stages, in order (a module may import its own stage and earlier ones, never a later one):

    formatting, schemas -> alerts.channels -> config -> demo -> ingest -> warehouse -> alerts -> publish -> build
    -> nightly -> cli

Prefect is imported only by nightly.py and cli.py; only flows/warehouse/ opens a DuckDB connection; ingest never
imports DuckDB; ``import flows.config`` and the workbook worker load no DuckDB, pandera or pandas.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "flows"

# longest prefix wins: flows.alerts.channels is a leaf that config may import; flows.alerts (evaluate) comes later
STAGES = {
    "flows": 0,  # flows/__init__.py (empty)
    "flows.formatting": 0,
    "schemas": 0,
    "flows.alerts.channels": 1,
    "flows.config": 2,
    "flows.demo": 3,
    "flows.ingest": 4,
    "flows.warehouse": 5,
    "flows.alerts": 6,
    "flows.publish": 7,
    "flows.build": 8,
    "flows.nightly": 9,
    "flows.cli": 10,
}
PREFECT_ALLOWED = {"flows.nightly", "flows.cli"}
HEAVY = ("duckdb", "pandera", "pandas")


def stage(module: str) -> int | None:
    best = max((p for p in STAGES if module == p or module.startswith(p + ".")), key=len, default=None)
    if best == "flows" and module != "flows":
        return None  # a module of flows/ that has no stage of its own
    return None if best is None else STAGES[best]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at module level or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # `from flows.warehouse import db`: the module imported is flows.warehouse.db
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module.startswith("flows")]
    return found


MODULES = sorted(p for p in FLOWS.rglob("*.py"))


def test_every_module_has_a_stage():
    assert [module_name(p) for p in MODULES if stage(module_name(p)) is None] == []


def test_imports_point_only_to_earlier_stages():
    later = []
    for path in MODULES:
        name = module_name(path)
        for line, imported in imports(path):
            target = stage(imported)
            if target is not None and (imported.startswith("flows") or imported.startswith("schemas")):
                if target > stage(name):
                    later.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {imported} (a later stage)")
    assert later == []


def test_prefect_only_in_the_flow_and_the_cli():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {imported}"
        for path in MODULES
        if module_name(path) not in PREFECT_ALLOWED
        for line, imported in imports(path)
        if imported.split(".")[0] in ("prefect", "prefect_dask")
    ]
    assert offenders == []


def test_ingest_never_touches_the_warehouse_or_later_stages():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {imported}"
        for path in sorted((FLOWS / "ingest").rglob("*.py"))
        for line, imported in imports(path)
        if imported.split(".")[0] == "duckdb"
        or imported.startswith(("flows.warehouse", "flows.alerts", "flows.publish", "flows.build"))
    ]
    assert offenders == []


def test_only_the_warehouse_package_opens_duckdb():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in MODULES
        if not module_name(path).startswith("flows.warehouse")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "duckdb.connect(" in line
    ]
    assert offenders == []


def loaded_after(statement: str) -> set[str]:
    """The top-level packages in sys.modules after running ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "statement",
    [
        "import flows.config",
        "from flows.config import load_settings; load_settings(None)",
        # what a workbook worker process imports before and while it writes a unit's documents
        "import flows.publish.worker; from flows.publish.documents import write_documents",
    ],
)
def test_light_entry_points_load_no_duckdb_pandera_or_pandas(statement):
    assert loaded_after(statement) & set(HEAVY) == set()


def test_config_with_alert_channels_stays_light(tmp_path):
    config = tmp_path / "recon.toml"
    config.write_text('[[alerts.channels]]\ntype = "webhook"\nurl = "http://127.0.0.1:9/"\n', encoding="utf-8")
    statement = f"from flows.config import load_settings; load_settings({str(config)!r})"
    assert loaded_after(statement) & set(HEAVY) == set()


def test_a_rules_test_is_found_from_its_id():
    """Each rule of sql/rules/registry.csv has its test module: tests/warehouse/rules/test_rule_<id>.py."""
    import csv

    with (ROOT / "sql" / "rules" / "registry.csv").open(encoding="utf-8") as f:
        kinds = [r["kind"] for r in csv.DictReader(f)]
    missing = [k for k in kinds if not (ROOT / "tests" / "warehouse" / "rules" / f"test_rule_{k}.py").is_file()]
    assert missing == []


def test_docs_name_the_one_place_of_every_module():
    """docs/architecture.md names every module of flows/ (and README's "What is where" every sub-package)."""
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    modules = [p.relative_to(ROOT).as_posix() for p in MODULES if p.name != "__init__.py"]
    assert [m for m in modules if f"`{m}`" not in architecture and f"{m}`" not in architecture] == []
    packages = sorted({p.parent.relative_to(ROOT).as_posix() for p in MODULES if p.parent != FLOWS})
    assert [p for p in packages if f"`{p}/`" not in readme] == []
