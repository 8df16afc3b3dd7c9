"""Publish: for each budget unit and fiscal year in the marts as of a date, write the outputs analysts hand on.
The one publish module that reads the warehouse (DuckDB); the workbooks and paragraphs are written from what it
reads by flows/publish/documents.py, in worker processes (flows/publish/worker.py) when there are many units.

Into ``out_dir/<agency_code>_<fiscal_year>/``:

- ``预算执行_<agency>_<year>_<as_of>.xlsx``: the execution workbook (unit, projects, quarters with a chart, carry-over
  squeeze, exceptions, rejected rows, data sources, and the money block of the 项目支出绩效自评表 (财预〔2020〕10号));
- ``资金情况说明_<agency>_<year>_<as_of>.md``: a draft funds paragraph written from the same numbers;
- ``marts/<mart>_<as_of>.csv`` (UTF-8 with BOM) and ``.parquet``: copies of the marts for that unit, year and date.

Money stays exact: DECIMAL columns are fetched as Python ``Decimal`` (never through ``.df()``), amounts are shown in
万元 rounded half-up to 0.01 from the exact yuan sum, and rates are the marts' (computed once, in SQL, half-up).
Every file is written to a temporary name in its folder and moved into place with ``os.replace``, so a reader
never sees half a file. A publish holds the output folder's lock and first removes the temporary files a killed
publish left there (flows/publish/documents.py ``publishing``; only our own names: ``OUTPUT_PREFIXES``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from flows.config import AlertSettings
from flows.formatting import mask_accounts
from flows.publish.documents import (
    DOCUMENT_PREFIXES,
    publishing,
    temp_name_pattern,
    tmp_for,
    unit_folder,
    write_atomic,
    write_documents,
)
from flows.publish.paragraph import behind_thresholds
from flows.publish.unit import UnitData
from flows.publish.workbook import build_operator_workbook
from flows.publish.worker import Workers
from flows.warehouse import db

log = logging.getLogger("treasury_recon.publish")

MARTS = ("execution_by_project", "execution_by_unit", "execution_by_quarter", "carryover_squeeze", "exceptions")

# The final names' starts of every file a publish writes: its temporary names are these with tmp_for's pattern.
OUTPUT_PREFIXES = DOCUMENT_PREFIXES + tuple(f"{mart}_" for mart in MARTS)
_OUTPUT_TEMP = temp_name_pattern(OUTPUT_PREFIXES)


def is_output_temp(name: str) -> bool:
    """Whether a file name is one of a publish's temporary names (what the next publish removes)."""
    return _OUTPUT_TEMP.fullmatch(name) is not None


CSV_UNSAFE_PREFIX = r"^[=+\-@\t\r]"  # cells Excel would evaluate when it opens the CSV
SEVERITY_ORDER = {"fatal": 0, "warning": 1, "info": 2}


# --------------------------------------------------------------------------------------------------------------
# Reading the marts


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# Exceptions for a unit and year: its own, plus the file-level findings that name no unit (e.g. a totals row that
# disagrees in a file of several units) of the files that carry the unit's rows (and of no other year). A row's
# finding that names no unit (a refund of an unknown voucher) is the operator's.
UNIT_FILES = "publish_unit_files"  # temp table: (agency_code, file_name) for every file that carries a unit's rows
EXCEPTION_FILTER = (
    "as_of = ? and ((agency_code = ? and fiscal_year = ?)"
    " or (agency_code is null and source_row is null and (fiscal_year is null or fiscal_year = ?)"
    f" and source_file in (select file_name from {UNIT_FILES} where agency_code = ?)))"
)


def _exception_params(as_of: dt.date, agency_code: str, fiscal_year: int) -> list[Any]:
    return [as_of, agency_code, fiscal_year, fiscal_year, agency_code]


# Free-text fields where an account number can appear (a rejected cell, a row's text, a finding's detail): masked
# in every staff-facing output unless the config says otherwise ([publish] mask_accounts = false).
MASKED_FIELDS = frozenset({"value", "message", "row_text", "detail", "evidence", "use_des", "error"})
MASK_FUNCTION = "recon_mask_accounts"  # mask_accounts as a DuckDB function, for the mart copies


def masked(rows: list[dict[str, Any]], mask: bool = True) -> list[dict[str, Any]]:
    """The rows with account numbers masked in their free-text fields (``mask_accounts``); as they are if not mask."""
    if not mask:
        return rows
    return [
        {k: mask_accounts(v) if k in MASKED_FIELDS and isinstance(v, str) else v for k, v in row.items()}
        for row in rows
    ]


@dataclass(frozen=True)
class Shared:
    """Read once per publish: rejected rows and data sources by unit, and what belongs to no unit (the operator's).

    Rows and files are a unit's only when they carry its rows; nothing of one unit is ever in another's outputs."""

    rejected: dict[str, list[dict[str, Any]]]  # agency_code -> its rejected rows
    sources: dict[str, list[dict[str, Any]]]  # agency_code -> the files that carry its rows
    unassigned: list[dict[str, Any]]  # rejected rows whose unit cannot be read
    all_sources: list[dict[str, Any]]  # every file, with ``agencies``: the units it carries
    mask: bool = True


VOUCHERS = "publish_vouchers"  # temp table: the vouchers the as-of date's squeeze and exceptions name


def prepare(con: duckdb.DuckDBPyConnection, as_of: dt.date, mask: bool = True) -> Shared:
    """Read once what the units' outputs need beyond their marts, and keep the few columns of the vouchers the
    squeeze and exception rows name in a temp table (DuckDB keeps temp tables on a read-only connection), so that
    each unit joins that small table instead of the whole ``payments`` view. A refund notice's file is its
    original vouchers' unit's when the notice names no unit."""
    con.execute(
        f"create or replace temp table {VOUCHERS} as"
        " select p.pay_cert_no, any_value(p.pro_name) as pro_name, any_value(p.use_des) as use_des,"
        " any_value(p.contract_no) as contract_no from payments as p"
        " where p.pay_cert_no in (select pay_cert_no from carryover_squeeze where as_of = ?"
        " union select pay_cert_no from exceptions where as_of = ? and pay_cert_no is not null)"
        " group by p.pay_cert_no",
        [as_of, as_of],
    )
    con.execute(
        f"create or replace temp table {UNIT_FILES} as select distinct agency_code, file_name from ("
        " select agency_code, source_file as file_name from raw_payments"
        " union all select agency_code, source_file from raw_budget_lines"
        " union all select coalesce(r.agency_code, v.agency_code), r.source_file from raw_refunds as r"
        " left join raw_payments as v on r.ori_pay_cert_no = v.pay_cert_no"
        " union all select agency_code, source_file from rejected_rows"
        ") where agency_code is not null"
    )
    if mask:
        try:
            con.create_function(MASK_FUNCTION, mask_accounts, ["VARCHAR"], "VARCHAR")
        except duckdb.NotImplementedException:
            pass  # already there: a second publish on this connection
    rejected = masked(
        _rows(
            con,
            'select source_file, source_row, "column", value, "check", message, row_text, agency_code'
            ' from rejected_rows order by source_file, source_row nulls first, "column"',
        ),
        mask,
    )
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for r in rejected:
        if r["agency_code"] is not None:
            by_unit.setdefault(r["agency_code"], []).append(r)
    sources = masked(
        _rows(
            con,
            "select s.*, (select string_agg(u.agency_code, ', ' order by u.agency_code) from"
            f" {UNIT_FILES} as u where u.file_name = s.file_name) as agencies from source_files as s"
            " order by s.file_name",
        ),
        mask,
    )
    unit_sources: dict[str, list[dict[str, Any]]] = {}
    for code, file_name in con.execute(f"select agency_code, file_name from {UNIT_FILES} order by 1, 2").fetchall():
        unit_sources.setdefault(code, []).append(file_name)
    by_name = {s["file_name"]: s for s in sources}
    return Shared(
        rejected=by_unit,
        sources={code: [by_name[f] for f in files if f in by_name] for code, files in unit_sources.items()},
        unassigned=[r for r in rejected if r["agency_code"] is None],
        all_sources=sources,
        mask=mask,
    )


def load_unit(
    con: duckdb.DuckDBPyConnection, unit: dict[str, Any], as_of: dt.date, shared: Shared | None = None
) -> UnitData:
    """Everything one unit's outputs show. ``shared`` comes from ``prepare(con, as_of)`` (made here if not given)."""
    if shared is None:
        shared = prepare(con, as_of)
    key = [as_of, unit["agency_code"], unit["fiscal_year"]]
    data = UnitData(as_of=as_of, unit=unit)
    data.projects = _rows(
        con,
        "select * from execution_by_project where as_of = ? and agency_code = ? and fiscal_year = ? order by pro_code",
        key,
    )
    data.quarters = _rows(
        con,
        "select * from execution_by_quarter where as_of = ? and agency_code = ? and fiscal_year = ?"
        " order by pro_code, quarter",
        key,
    )
    data.funds = _rows(
        con,
        "select * from self_assessment_funds where as_of = ? and agency_code = ? and fiscal_year = ?"
        " order by scope_kind desc, scope_code, row_no",
        key,
    )
    data.behind = _rows(
        con,
        "select * from behind_plan where as_of = ? and agency_code = ? and fiscal_year = ?"
        " and basis = 'quarter_plan' and severity is not null order by pro_code",
        key,
    )
    data.squeeze = masked(
        _rows(
            con,
            "select s.*, coalesce(b.pro_name, p.pro_name) as pro_name, p.use_des, p.contract_no"
            " from carryover_squeeze as s"
            " left join budget_lines as b"
            " on s.fiscal_year = b.fiscal_year and s.agency_code = b.agency_code and s.pro_code = b.pro_code"
            f" left join {VOUCHERS} as p on s.pay_cert_no = p.pay_cert_no"
            " where s.as_of = ? and s.agency_code = ? and s.fiscal_year = ?"
            " order by s.pro_code, s.pay_cert_no, s.rule",
            key,
        ),
        shared.mask,
    )
    exceptions = _rows(
        con,
        "select x.*, coalesce(b.pro_name, p.pro_name) as pro_name from (select * from exceptions where "
        + EXCEPTION_FILTER
        + ") as x left join budget_lines as b"
        " on x.fiscal_year = b.fiscal_year and x.agency_code = b.agency_code and x.pro_code = b.pro_code"
        f" left join {VOUCHERS} as p on x.pay_cert_no = p.pay_cert_no",
        _exception_params(as_of, unit["agency_code"], unit["fiscal_year"]),
    )
    data.exceptions = sorted(masked(exceptions, shared.mask), key=_exception_order)
    data.rejected = shared.rejected.get(unit["agency_code"], [])
    data.sources = shared.sources.get(unit["agency_code"], [])
    return data


def _exception_order(x: dict[str, Any]) -> tuple:
    return (
        SEVERITY_ORDER.get(x["severity"], 9),
        x["kind"],
        x["pro_code"] or "",
        x["pay_cert_no"] or "",
        x["source_file"] or "",
        x["source_row"] or 0,
    )


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_mart(con: duckdb.DuckDBPyConnection, mart: str, data: UnitData, folder: Path, mask: bool = True) -> list[Path]:
    """CSV (UTF-8 with BOM) and Parquet copies of one mart for the unit, year and as-of date, via DuckDB COPY;
    account numbers in free-text columns masked when ``mask`` (needs ``prepare(con, as_of, mask=True)`` first)."""
    if mart == "exceptions":
        where, params = EXCEPTION_FILTER, _exception_params(data.as_of, data.agency_code, data.fiscal_year)
    else:
        where, params = (
            "as_of = ? and agency_code = ? and fiscal_year = ?",
            [data.as_of, data.agency_code, data.fiscal_year],
        )
    columns = con.execute(f"describe select * from {_ident(mart)}").fetchall()
    order = ", ".join(_ident(c[0]) for c in columns if c[0] in ("pro_code", "quarter", "pay_cert_no", "kind"))
    order_by = f" order by {order}" if order else ""
    shown = ", ".join(
        f"{MASK_FUNCTION}({_ident(name)}) as {_ident(name)}" if mask and name in MASKED_FIELDS else _ident(name)
        for name, *_ in columns
    )
    plain = f"select {shown} from {_ident(mart)} where {where}{order_by}"
    # For the CSV only: text Excel would evaluate (=, +, -, @ first) gets a leading apostrophe. Parquet is exact.
    guarded = ", ".join(
        f"case when regexp_matches({_ident(name)}, '{CSV_UNSAFE_PREFIX}') then '''' || {_ident(name)}"
        f" else {_ident(name)} end as {_ident(name)}"
        if dtype == "VARCHAR"
        else _ident(name)
        for name, dtype, *_ in columns
    )
    csv_select = f"select {guarded} from ({plain})"
    stem = f"{mart}_{data.as_of.isoformat()}"

    def write_parquet(tmp: Path) -> None:
        con.execute(f"copy ({plain}) to {_sql_string(str(tmp))} (format parquet)", params)

    def write_csv(tmp: Path) -> None:
        raw = tmp_for(tmp)
        try:
            con.execute(f"copy ({csv_select}) to {_sql_string(str(raw))} (format csv, header true)", params)
            with tmp.open("wb") as out, raw.open("rb") as src:
                out.write("\ufeff".encode())
                shutil.copyfileobj(src, out)
        finally:
            raw.unlink(missing_ok=True)

    return [
        write_atomic(folder / f"{stem}.csv", write_csv),
        write_atomic(folder / f"{stem}.parquet", write_parquet),
    ]


def copy_marts(con: duckdb.DuckDBPyConnection, data: UnitData, out_dir: Path, mask: bool = True) -> list[Path]:
    folder = unit_folder(data, out_dir) / "marts"
    return [path for mart in MARTS for path in copy_mart(con, mart, data, folder, mask)]


OPERATOR_FOLDER = "operator"


def write_operator_report(con: duckdb.DuckDBPyConnection, shared: Shared, as_of: dt.date, out_dir: Path) -> Path:
    """One report per as-of date for the operator, never in a unit's folder: the rejected rows whose unit cannot be
    read, the findings that name no unit, and every file with the units whose rows it carries."""
    exceptions = _rows(
        con,
        "select x.*, p.pro_name from exceptions as x"
        f" left join {VOUCHERS} as p on x.pay_cert_no = p.pay_cert_no"
        " where x.as_of = ? and x.agency_code is null",
        [as_of],
    )
    data = UnitData(
        as_of=as_of,
        unit={"agency_code": OPERATOR_FOLDER, "fiscal_year": as_of.year},
        exceptions=sorted(masked(exceptions, shared.mask), key=_exception_order),
        rejected=shared.unassigned,
        sources=shared.all_sources,
    )
    wb = build_operator_workbook(data)
    path = Path(out_dir) / OPERATOR_FOLDER / f"运维报告_{as_of.isoformat()}.xlsx"
    return write_atomic(path, lambda tmp: wb.save(tmp))


def publish_workers(units: int) -> int:
    """Processes that build workbooks when the settings give none (run.publish_workers, $RECON_PUBLISH_WORKERS):
    one per core (at most 4) when there are enough units to pay for starting them; 1 (this process) otherwise."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4) if units >= 4 * min(cores, 4) and cores > 1 else 1


def publish_outputs(
    warehouse_path: Path,
    out_dir: Path,
    as_of: dt.date,
    *,
    alert_settings: AlertSettings | None = None,
    mask: bool = True,
    workers: int | None = None,
) -> list[Path]:
    """Write the workbook, draft paragraph and mart copies of every (unit, fiscal year) as of ``as_of``.

    ``alert_settings`` (the config's [alerts]; default AlertSettings()) gives the behind-plan thresholds
    behind_plan judges by for the paragraph (set on the session), the same ones the alerts use. ``mask`` (the
    config's [publish] mask_accounts) masks account numbers in every output (the warehouse keeps them exact). Rows
    and findings that belong to no unit go to one operator report, ``out_dir/operator/运维报告_<as_of>.xlsx``.

    Workbooks are built in ``workers`` processes (the config's run.publish_workers; default: ``publish_workers``;
    flows/publish/worker.py) while
    this process reads the marts and writes their copies.
    Returns the paths written, unit by unit. Raises ValueError when the warehouse has no marts for ``as_of``
    (never reconciled for that date). The 自评表's 分值 is the marts' (self_assessment_funds: the reconcile step's
    weight).
    """
    with publishing(Path(out_dir), OUTPUT_PREFIXES):
        return _publish(warehouse_path, Path(out_dir), as_of, alert_settings, mask, workers)


def _publish(
    warehouse_path: Path,
    out_dir: Path,
    as_of: dt.date,
    alert_settings: AlertSettings | None,
    mask: bool,
    workers: int | None,
) -> list[Path]:
    written: list[Path] = []
    with db.read_only(Path(warehouse_path)) as con:
        try:
            units = _rows(
                con, "select * from execution_by_unit where as_of = ? order by agency_code, fiscal_year", [as_of]
            )
            dates = [
                r[0]
                for r in con.execute(
                    "select as_of from execution_by_unit union select as_of from exceptions order by 1"
                ).fetchall()
            ]
        except duckdb.CatalogException as e:
            raise ValueError(f"{warehouse_path} has no marts yet: run a reconcile first ({e})") from None
        if not units:
            if as_of not in dates:
                raise ValueError(
                    f"the warehouse has no marts as of {as_of.isoformat()}: reconcile that date first"
                    f" (as-of dates present: {', '.join(d.isoformat() for d in dates) or 'none'})"
                )
        shared = prepare(con, as_of, mask)
        workers = publish_workers(len(units)) if workers is None else max(1, workers)
        warning_pp, critical_pp = behind_thresholds(
            *((alert_settings.behind_warning_pp, alert_settings.behind_critical_pp) if alert_settings else ())
        )
        con.execute("set variable behind_warning_pp = ?", [str(warning_pp)])  # behind_plan judges by them
        con.execute("set variable behind_critical_pp = ?", [str(critical_pp)])
        args = (Path(out_dir), warning_pp, critical_pp)
        pool = Workers(workers) if workers > 1 and len(units) > 1 else None
        try:
            pending = []
            for unit in units:
                data = load_unit(con, unit, as_of, shared)
                documents = pool.submit(data, *args) if pool else write_documents(data, *args)
                pending.append((data, documents, copy_marts(con, data, Path(out_dir), mask)))  # DuckDB meanwhile
            operator_report = write_operator_report(con, shared, as_of, Path(out_dir))
            built = pool.results() if pool else {}
        finally:
            if pool:
                pool.close()
        for data, documents, marts in pending:
            paths = (built[documents] if pool else documents) + marts
            log.info("published %s %s as of %s: %d files", data.agency_code, data.fiscal_year, as_of, len(paths))
            written.extend(paths)
        written.append(operator_report)
    return written
