"""The synthetic data generator: deterministic, and what it writes is what a real run expects to find."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flows import cli
from flows.build import build_night
from flows.demo.generate import generate
from flows.warehouse import db


def test_same_seed_same_bytes(tmp_path: Path):
    a = generate(tmp_path / "a", payments=3000, units=3, projects_per_unit=4, seed=5)
    b = generate(tmp_path / "b", payments=3000, units=3, projects_per_unit=4, seed=5)
    for pa_, pb in zip(a.payments + a.refunds, b.payments + b.refunds, strict=True):
        assert pa_.read_bytes() == pb.read_bytes()
    c = generate(tmp_path / "c", payments=3000, units=3, projects_per_unit=4, seed=6)
    assert c.payments[0].read_bytes() != a.payments[0].read_bytes()


def test_generated_exports_run_with_every_kind_of_finding(tmp_path: Path, capsys):
    raw = tmp_path / "raw"
    assert (
        cli.main(
            [
                "generate",
                "--out",
                str(raw),
                "--payments",
                "8000",
                "--units",
                "4",
                "--projects-per-unit",
                "6",
                "--bad-rows",
                "4",
            ]
        )
        == 0
    )
    assert "8000 vouchers in 4 payment export(s)" in capsys.readouterr().out
    wh = tmp_path / "w.duckdb"
    batches = build_night(wh, dt.date(2025, 12, 31), raw_dir=raw).loaded
    assert all(b.status == "loaded" for b in batches)
    with db.read_only(wh) as con:
        assert con.execute(
            "select count(*) from source_files"
            " where rows_read <> rows_loaded + rows_duplicate + rows_rejected + rows_skipped"
        ).fetchone() == (0,)
        # overlapping quarterly windows: repeated vouchers are duplicates, each voucher counted once
        assert con.execute("select sum(rows_duplicate) > 0 from source_files").fetchone() == (True,)
        assert con.execute("select count(distinct pay_cert_no) = count(*) from payments").fetchone() == (True,)
        # every generated control total matches: the totals rows agree with the data
        assert con.execute("select count(*) from exceptions where kind = 'control_total_mismatch'").fetchone() == (0,)
        kinds = {k for (k,) in con.execute("select distinct kind from exceptions").fetchall()}
        assert {"unbudgeted", "voided", "carryover_squeeze"} <= kinds
        rejected = con.execute("select count(distinct source_row || source_file) from rejected_rows").fetchone()[0]
        assert 4 <= rejected <= 8  # 4 bad rows, each possibly repeated in an overlapping window
        units = con.execute("select count(*) from execution_by_unit").fetchone()[0]
        assert units == 4
