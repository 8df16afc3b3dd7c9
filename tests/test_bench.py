"""The benchmark scripts run, with their smallest settings, and write their JSON (the figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import harness

REPO = Path(__file__).resolve().parents[1]
SMOKE = [  # Prefect's flows (night P, scaleout's flows) cost ~15 s each of server start: left to `make bench`
    ["startup", "--quick"],
    ["ingest", "--quick"],
    ["night", "--quick", "--skip", "P"],
    ["reconcile", "--quick"],
    ["scaleout", "--quick", "--skip-flow"],
]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-data")


@pytest.mark.parametrize("args", SMOKE, ids=[a[0] for a in SMOKE])
def test_script_runs(args: list[str], data: Path):
    out = data / f"{args[0]}.json"
    proc = subprocess.run(
        [sys.executable, "-m", f"bench.{args[0]}", *args[1:], "--dir", str(data), "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["machine"]["nproc"] and result["rows"]
    assert all(row["result"]["wall_s"] > 0 for row in result["rows"])


def test_a_missing_stage_fails_loudly():
    with pytest.raises(harness.StageMissing, match="renamed"):
        harness.install_stages([("gone", "flows.build", "no_such_function")], {})
