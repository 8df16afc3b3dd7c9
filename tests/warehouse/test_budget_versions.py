"""Budget versions (CONTRACT.md 1.3): every budget sheet is a version of the lines it lists, effective from a date
the sheet gives; a figure as of D uses, per project, the latest version effective on or before D. Never load order.

A unit's original 2025 sheet (no date: effective 2025-01-01) and a mid-year adjustment sheet whose file name sorts
BEFORE the original's. Real CSV exports, the real pipeline, real DuckDB files: a "nightly" warehouse that loads the
original first and the adjustment in a later run, a rebuild that loads everything at once, and one that loads the
adjustment first. All three must hold the same budget_lines and the same execution marts.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from flows.build import build_night
from flows.warehouse import db, load
from schemas.spec import export_header
from tests.builders import write_csv

D = Decimal
HEADER = export_header("budget", "pro_code pro_name agency_code reply_amt adj_amt cur_amt 上年结转数")
QUARTERS = export_header("budget", "plan_q1 plan_q2 plan_q3 plan_q4")
PAY_HEADER = export_header(
    "payments", "pay_cert_no pay_date agency_code pro_code pro_name bgt_doc_no payee_acct_name pay_amt use_des status"
)
ORIGINAL = "budget/budget_2025.csv"  # sorts after the adjustment's name
ADJUSTMENT = "budget/2025_adjust.csv"
JUNE, JULY_10, DEC = dt.date(2025, 6, 30), dt.date(2025, 7, 10), dt.date(2025, 12, 31)
AS_OF = [JUNE, JULY_10, DEC]

# (pro, name, 年初, 调整, 全年, 上年结转, plans). The adjustment raises P1 by 2,000 and re-bases P2 at 6,000 (its
# 年初预算数 column then says 6,000: the 年初预算数 that counts stays the original's 5,000). P3 is not re-sent.
ORIGINAL_LINES = [
    ("P1", "道路养护", "10000.00", "0.00", "10000.00", "0.00", ("2500.00", "2500.00", "2500.00", "2500.00")),
    ("P2", "校舍维修", "5000.00", "0.00", "5000.00", "0.00", ("", "", "", "")),
    ("P3", "环境整治", "3000.00", "0.00", "3000.00", "0.00", ("", "", "", "")),
]
ADJUSTED_LINES = [
    ("P1", "道路养护", "10000.00", "2000.00", "12000.00", "0.00", ("2500.00", "2500.00", "4000.00", "3000.00")),
    ("P2", "校舍维修", "6000.00", "0.00", "6000.00", "0.00", ("", "", "", "")),
]
PAYMENTS = [
    ("PV1", "2025-03-01", "P1", "6000.00"),
    ("PV2", "2025-05-01", "P2", "5500.00"),  # above P2's original 5,000: an overspend until the adjustment
    ("PV3", "2025-08-01", "P1", "3000.00"),
    ("PV4", "2025-04-01", "P3", "1000.00"),
]


def budget_rows(lines, *, title: list[str], date_column: str | None = None) -> list[list[str]]:
    header = HEADER + (["调整日期"] if date_column else []) + QUARTERS
    body = [
        [pro, name, "990001", reply, adj, cur, carry] + ([date_column] if date_column else []) + list(plans)
        for pro, name, reply, adj, cur, carry, plans in lines
    ]
    return [[t] for t in title] + [["金额单位：元"], header] + body


ADJUSTMENT_STYLES = {
    # style: (title rows, date column value, effective date)
    "title_month": (["示例单位2025年项目预算表（2025年7月调整）"], None, dt.date(2025, 7, 1)),
    "title_date": (["示例单位2025年项目预算表", "调整日期：2025-07-15"], None, dt.date(2025, 7, 15)),
    "column": (["示例单位2025年项目预算调整表"], "2025/7/15", dt.date(2025, 7, 15)),
}


def write_original(raw: Path) -> None:
    write_csv(raw / ORIGINAL, budget_rows(ORIGINAL_LINES, title=["示例单位2025年项目预算表"]))
    write_csv(
        raw / "payments" / "pay_2025.csv",
        [["国库集中支付明细查询"], PAY_HEADER]
        + [
            [no, day, "990001", pro, f"项目{pro}", "示财预〔2025〕3号", "示例公司", amt, "进度款", "已支付"]
            for no, day, pro, amt in PAYMENTS
        ],
    )


def write_adjustment(raw: Path, style: str) -> None:
    title, column, _ = ADJUSTMENT_STYLES[style]
    write_csv(raw / ADJUSTMENT, budget_rows(ADJUSTED_LINES, title=title, date_column=column))


def run(raw: Path, wh: Path, *as_of: dt.date) -> None:
    for day in as_of:
        build_night(wh, day, raw_dir=raw)


def rows(wh: Path, sql: str, params: list | None = None) -> list[tuple]:
    with db.read_only(wh) as con:
        return con.execute(sql, params or []).fetchall()


MARTS = {
    "budget_lines": "select * exclude (source_row), source_row from budget_lines order by all",
    "execution_by_project": "select * from execution_by_project order by all",
    "execution_by_unit": "select * from execution_by_unit order by all",
    "execution_by_quarter": "select * from execution_by_quarter order by all",
    "exceptions": "select * exclude (source_file), source_file from exceptions order by all",
}


@pytest.fixture(scope="module", params=list(ADJUSTMENT_STYLES))
def warehouses(request, tmp_path_factory) -> tuple[str, dict[str, Path]]:
    """The same files loaded three ways; each warehouse reconciled as of every date of AS_OF, in the same order."""
    style = request.param
    root = tmp_path_factory.mktemp(f"versions-{style}")
    out = {}
    # nightly: the original first (reconciled as of June), the adjustment arrives later
    raw = root / "nightly" / "raw"
    write_original(raw)
    run(raw, root / "nightly.duckdb", JUNE)
    write_adjustment(raw, style)
    run(raw, root / "nightly.duckdb", *AS_OF)
    out["nightly"] = root / "nightly.duckdb"
    # rebuild: every file at once (the adjustment's name sorts first, so it gets the lower file_id)
    raw = root / "rebuild" / "raw"
    write_original(raw)
    write_adjustment(raw, style)
    run(raw, root / "rebuild.duckdb", *AS_OF)
    out["rebuild"] = root / "rebuild.duckdb"
    # reversed: the adjustment first, the original in a later run
    raw = root / "reversed" / "raw"
    write_adjustment(raw, style)
    (raw / "payments").mkdir(parents=True)
    run(raw, root / "reversed.duckdb", JUNE)
    shutil.rmtree(raw)
    write_original(raw)
    write_adjustment(raw, style)
    run(raw, root / "reversed.duckdb", *AS_OF)
    out["reversed"] = root / "reversed.duckdb"
    return style, out


@pytest.mark.parametrize("relation", list(MARTS))
def test_load_order_never_changes_a_figure(warehouses, relation: str):
    _, whs = warehouses
    got = {name: rows(wh, MARTS[relation]) for name, wh in whs.items()}
    assert got["nightly"], relation
    assert got["rebuild"] == got["nightly"], relation
    assert got["reversed"] == got["nightly"], relation


def test_the_version_in_force_at_each_as_of_date_counts(warehouses):
    style, whs = warehouses
    effective = ADJUSTMENT_STYLES[style][2]
    for wh in whs.values():
        got = {
            (as_of, pro): (cur, paid, rate)
            for as_of, pro, cur, paid, rate in rows(
                wh,
                "select as_of, pro_code, cur_amt, paid_current, execution_rate_pct from execution_by_project",
            )
        }
        for as_of in AS_OF:
            adjusted = as_of >= effective
            assert got[(as_of, "P1")][0] == (D("12000.00") if adjusted else D("10000.00")), (style, as_of)
            assert got[(as_of, "P2")][0] == (D("6000.00") if adjusted else D("5000.00")), (style, as_of)
            assert got[(as_of, "P3")][0] == D("3000.00")  # not re-sent: the original stays in force
        assert got[(DEC, "P1")] == (D("12000.00"), D("9000.00"), D("75.0")), style
        assert got[(JUNE, "P1")] == (D("10000.00"), D("6000.00"), D("60.0")), style
        unit = rows(wh, "select as_of, cur_amt from execution_by_unit order by as_of")
        assert unit == [(JUNE, D("18000.00")), (JULY_10, D(21000 if JULY_10 >= effective else 18000)), (DEC, D(21000))]
        # the quarterly plan of the version in force: Q3 of P1 is 2,500 before the adjustment, 4,000 after it
        q3 = dict(rows(wh, "select as_of, plan_amt from execution_by_quarter where pro_code = 'P1' and quarter = 3"))
        assert q3 == {JUNE: D("2500.00"), JULY_10: D("4000.00") if JULY_10 >= effective else D("2500.00"), DEC: D(4000)}
        # P2's 5,500 exceeds its original 5,000 but not its adjusted 6,000
        over = rows(wh, "select as_of, amount from exceptions where kind = 'overspend' and pro_code = 'P2' order by 1")
        assert over == [(JUNE, D("500.00"))] + ([] if JULY_10 >= effective else [(JULY_10, D("500.00"))])


def test_budget_lines_is_the_latest_version_with_the_original_reply_amt(warehouses):
    style, whs = warehouses
    effective = ADJUSTMENT_STYLES[style][2]
    got = rows(
        whs["rebuild"],
        "select pro_code, reply_amt, adj_amt, cur_amt, plan_q3, effective_date, source_file from budget_lines"
        " order by pro_code",
    )
    assert got == [
        ("P1", D("10000.00"), D("2000.00"), D("12000.00"), D("4000.00"), effective, ADJUSTMENT),
        ("P2", D("5000.00"), D("1000.00"), D("6000.00"), None, effective, ADJUSTMENT),
        ("P3", D("3000.00"), D("0.00"), D("3000.00"), None, dt.date(2025, 1, 1), ORIGINAL),
    ]


def test_every_version_is_loaded_and_every_row_accounted_for(warehouses):
    _, whs = warehouses
    for wh in whs.values():
        assert rows(
            wh,
            "select file_name, rows_loaded, rows_duplicate from source_files where kind = 'budget' order by 1",
        ) == [(ADJUSTMENT, 2, 0), (ORIGINAL, 3, 0)]
        assert rows(
            wh,
            "select count(*) from source_files"
            " where rows_read <> rows_loaded + rows_duplicate + rows_rejected + rows_skipped",
        ) == [(0,)]


def test_the_same_version_sent_twice_is_a_duplicate(tmp_path: Path):
    """Two sheets with the same effective date: the later file name wins, the other's rows are duplicates."""
    raw = tmp_path / "raw"
    write_original(raw)
    write_csv(
        raw / "budget" / "budget_2025_copy.csv", budget_rows(ORIGINAL_LINES[:1], title=["示例单位2025年项目预算表"])
    )
    run(raw, tmp_path / "w.duckdb", DEC)
    assert rows(
        tmp_path / "w.duckdb",
        "select file_name, rows_loaded, rows_duplicate from source_files where kind = 'budget' order by 1",
    ) == [(ORIGINAL, 2, 1), ("budget/budget_2025_copy.csv", 1, 0)]
    assert rows(tmp_path / "w.duckdb", "select source_file from budget_lines where pro_code = 'P1'") == [
        ("budget/budget_2025_copy.csv",)
    ]


def test_a_warehouse_from_before_budget_versions_still_opens(tmp_path: Path):
    """An existing warehouse whose raw_budget_lines has no effective_date gains it; its sheets count from Jan 1."""
    raw = tmp_path / "raw"
    write_original(raw)
    wh = tmp_path / "w.duckdb"
    run(raw, wh, JUNE)
    con = db.connect(wh)
    try:
        con.execute("drop view if exists budget_lines")
        for (view,) in con.execute("select view_name from duckdb_views() where not internal").fetchall():
            con.execute(f'drop view if exists "{view}"')
        if "effective_date" in {c for c, _ in load._table_columns(con, "raw_budget_lines")}:
            con.execute("alter table raw_budget_lines drop column effective_date")
    finally:
        con.close()
    write_adjustment(raw, "title_date")
    run(raw, wh, DEC)
    assert rows(wh, "select pro_code, cur_amt, effective_date from budget_lines order by 1") == [
        ("P1", D("12000.00"), dt.date(2025, 7, 15)),
        ("P2", D("6000.00"), dt.date(2025, 7, 15)),
        ("P3", D("3000.00"), dt.date(2025, 1, 1)),
    ]


def test_the_workbook_shows_the_version_in_force_at_its_date(warehouses, tmp_path: Path):
    """年初预算数 / 全年预算数 in the workbook come from the marts of that as-of date, never from the latest version."""
    import openpyxl

    from flows.publish import outputs

    style, whs = warehouses
    effective = ADJUSTMENT_STYLES[style][2]
    out = tmp_path / "out"
    for as_of in (JUNE, DEC):
        outputs.publish_outputs(whs["rebuild"], out, as_of)
        wb = openpyxl.load_workbook(out / "990001_2025" / f"预算执行_990001_2025_{as_of.isoformat()}.xlsx")
        ws = wb["项目执行"]
        header = [c.value for c in ws[1]]
        p1 = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == "P1")
        cells = dict(zip(header, p1, strict=False))
        adjusted = as_of >= effective
        assert cells["年初预算数（万元）"] == 1, (style, as_of)
        assert cells["全年预算数（万元）"] == (1.2 if adjusted else 1), (style, as_of)
        unit = dict(zip([c.value for c in wb["总体执行"][1]], [c.value for c in wb["总体执行"][2]], strict=False))
        assert unit["年初预算数（万元）"] == 1.8, (style, as_of)
