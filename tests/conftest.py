"""Shared fixtures: the sample exports, a raw/ landing folder, and one real local Prefect server per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

SHARED_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
SAMPLE_FILES = {
    "payments": ["payments_2025_01-06.xlsx", "payments_2025_06-07.csv"],
    "refunds": ["refunds_2025.xlsx"],
    "budget": ["budget_2025.xlsx"],
}

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_TASKS_DEFAULT_NO_CACHE", "true")


@pytest.fixture
def sample_raw(tmp_path: Path) -> Path:
    """A raw/ folder holding the hand-worked sample exports of ../shared/samples."""
    if not SHARED_SAMPLES.is_dir():
        pytest.fail(f"the shared samples are missing: {SHARED_SAMPLES}")
    raw = tmp_path / "raw"
    for kind, names in SAMPLE_FILES.items():
        (raw / kind).mkdir(parents=True)
        for name in names:
            shutil.copy(SHARED_SAMPLES / name, raw / kind / name)
    return raw


@pytest.fixture(scope="session")
def prefect_server():
    """A real local Prefect server (temporary database) for every flow run of the session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield
