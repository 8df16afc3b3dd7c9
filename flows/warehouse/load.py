"""Load: one night's files into the warehouse's raw tables, with their rejected rows and row accounting, and the
record of the run. Called by flows/build.py inside ``db.writer`` (a private copy of the warehouse)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pyarrow as pa

from flows.ingest.validate import FileBatch
from flows.warehouse.db import first_row, log, sql_file

_RAW_COLUMNS = {
    "payments": "raw_payments",
    "refunds": "raw_refunds",
    "budget": "raw_budget_lines",
}


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns where table_name = ? order by ordinal_position",
        [table],
    ).fetchall()


def load_batches(con: duckdb.DuckDBPyConnection, batches: list[FileBatch], run_id: str) -> list[FileBatch]:
    """Insert the batches' rows, rejects and accounting. Files already recorded (same sha256) are skipped and
    returned unchanged; the list of files actually loaded is returned."""
    known = {r[0] for r in con.execute("select sha256 from source_file_log").fetchall()}
    next_id = first_row(con, "select coalesce(max(file_id), 0) + 1 from source_file_log")[0]
    loaded = []
    for batch in batches:
        if batch.sha256 in known:
            log.info("%s: already loaded (same sha256), skipped", batch.file_name)
            continue
        known.add(batch.sha256)
        file_id = next_id
        next_id += 1
        _insert_rows(con, batch, file_id)
        _insert_rejects(con, batch, file_id)
        latest = None
        if batch.rows is not None and len(batch.rows):
            date_col = {"payments": "pay_date", "refunds": "refund_date"}.get(batch.kind)
            if date_col:
                latest = batch.rows[date_col].max().date()
        con.execute(
            "insert into source_file_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?::decimal(18, 0) * 0.01, ?::decimal(18, 0) * 0.01, ?, ?, ?)",
            [
                file_id,
                batch.file_name,
                str(batch.path),
                batch.sha256,
                batch.kind,
                batch.status,
                batch.error,
                batch.sheet,
                batch.encoding,
                ", ".join(f"{k}={v}" for k, v in sorted(batch.units.items())) or None,
                batch.fiscal_year,
                batch.rows_read,
                batch.rows_valid,
                batch.rows_rejected,
                batch.rows_skipped,
                batch.control_total,
                batch.parsed_total if batch.status == "loaded" else None,
                latest,
                run_id,
                datetime.now(UTC),
            ],
        )
        loaded.append(batch)
    con.execute(sql_file("schema/rejected_units.sql"))  # also ties earlier rejects to vouchers loaded now
    return loaded


_DECIMAL = re.compile(r"decimal", re.IGNORECASE)


def _insert_rows(con: duckdb.DuckDBPyConnection, batch: FileBatch, file_id: int) -> None:
    if batch.rows is None or not len(batch.rows):
        return
    table = _RAW_COLUMNS[batch.kind]
    df = batch.rows
    select = []
    for name, dtype in _table_columns(con, table):
        if name == "file_id":
            select.append("$file_id")
        elif name == "source_file":
            select.append("$source_file")
        elif _DECIMAL.match(dtype):
            # integer fen -> exact DECIMAL(18,2); no float on the way
            select.append(f'(cast("{name}" as decimal(18, 0)) * 0.01)::decimal(18, 2)')
        elif dtype == "DATE":
            select.append(f'cast("{name}" as date)')
        else:
            select.append(f'"{name}"')
    con.register("batch_rows", pa.Table.from_pandas(df, preserve_index=False))  # arrow scans 2.5x faster
    try:
        con.execute(
            f"insert into {table} select {', '.join(select)} from batch_rows",
            {"file_id": file_id, "source_file": batch.file_name},
        )
    finally:
        con.unregister("batch_rows")
    if batch.extras is not None and len(batch.extras):
        con.register("batch_extras", batch.extras)
        try:
            con.execute(
                "insert into raw_extra_columns select $file_id, $source_file, source_row, header, value"
                " from batch_extras",
                {"file_id": file_id, "source_file": batch.file_name},
            )
        finally:
            con.unregister("batch_extras")


def _insert_rejects(con: duckdb.DuckDBPyConnection, batch: FileBatch, file_id: int) -> None:
    if not len(batch.rejects):
        return
    df = batch.rejects.astype({c: "Int64" if c == "source_row" else "str" for c in batch.rejects.columns})
    df = df.astype(object).where(pd.notna(df), None)
    con.register("batch_rejects", df)
    try:
        con.execute(
            'insert into rejected_rows (file_id, source_file, source_row, "column", value, "check", message,'
            " row_text, agency_code, agency_name, ori_pay_cert_no)"
            ' select $file_id, $source_file, source_row, "column", value, "check", message, row_text, agency_code,'
            " agency_name, ori_pay_cert_no from batch_rejects",
            {"file_id": file_id, "source_file": batch.file_name},
        )
    finally:
        con.unregister("batch_rejects")


def record_copies(con: duckdb.DuckDBPyConnection, copies: list[tuple[str, str, str, str]], run_id: str) -> None:
    """Record (file name, sha256, name of the file already read with these bytes, message) of identical copies in
    `duplicate_files` (shown in source_files); a copy already recorded is left as it was."""
    if copies:
        con.executemany(
            "insert or ignore into duplicate_files values (?, ?, ?, ?, ?, ?)",
            [[*c, run_id, datetime.now(UTC)] for c in copies],
        )


def record_run(
    con: duckdb.DuckDBPyConnection, run_id: str, started: datetime, as_of, *, files_new: int, files_skipped: int
) -> None:
    """One row per completed run in `runs` (a failed run leaves its trace in `alerts` as run_failed)."""
    con.execute(
        "insert into runs values (?, ?, ?, ?, ?, ?, 'completed')",
        [run_id, started, datetime.now(UTC), as_of, files_new, files_skipped],
    )
