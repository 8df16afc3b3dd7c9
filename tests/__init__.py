"""The test suite, arranged like the code: tests/<stage>/test_<module>.py for flows/<stage>/<module>.py."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
