"""The repository stands alone: users clone it without anything beside it, so no test may read outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the one test that may climb: it is at the top of tests/
# a path that climbs out of the repository: ../shared, parents[2] of a test file, an absolute /work/... path
OUTSIDE = re.compile(r"""\.\./shared|["']shared["']|parents\[[2-9]\]|["']/work/""")


def test_no_test_reads_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in ("tests/test_repo.py", "tests/__init__.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert not offenders, "tests reach outside the repository:\n" + "\n".join(offenders)


def test_ci_runs_in_a_clone_with_nothing_beside_it():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "git clone" in script and "mktemp" in script, ".ci/run must test a clone in an empty folder"
