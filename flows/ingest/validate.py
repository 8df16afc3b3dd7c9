"""Read and validate one input file: the per-file work of the pipeline, independent of every other file.

``ingest_file`` never raises for bad input: a file that cannot be used comes back with status ``rejected`` and
the reason, so the other files of the run still load. Its result holds the valid canonical rows (money in integer
fen), the rejected cells with plain-words messages, extra columns, and the row accounting of the file.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.compute as pc

from flows.ingest.discover import NewFile, sha256_of
from flows.ingest.extract import Extracted, FileError, extract, find_header
from flows.ingest.read import UnreadableFile, read_grid
from schemas.models import MODELS, message_for
from schemas.spec import load_spec

log = logging.getLogger("treasury_recon.ingest")

REJECT_COLUMNS = [
    "source_row",
    "column",
    "value",
    "check",
    "message",
    "row_text",
    # the unit the rejected row belongs to, as far as its own cells (or the sheet's title) say: its agency code,
    # else its agency name or (a refund) the original voucher, which the load resolves to a code (rejected_rows)
    "agency_code",
    "agency_name",
    "ori_pay_cert_no",
]


@dataclass
class FileBatch:
    """What one file yields. ``rows`` holds only valid rows; every other row is skipped or in ``rejects``."""

    path: Path
    file_name: str
    sha256: str
    kind: str
    status: str = "loaded"  # loaded | rejected
    error: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    units: dict[str, str] = field(default_factory=dict)
    fiscal_year: int | None = None
    rows_read: int = 0
    rows_skipped: int = 0
    control_total: int | None = None  # fen
    parsed_total: int | None = None  # fen
    rows: pd.DataFrame | None = None
    rejects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REJECT_COLUMNS))
    extras: pd.DataFrame | None = None  # source_row, header, value
    notes: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        if self.status == "rejected":
            return self.rows_read - self.rows_skipped
        return int(self.rejects["source_row"].dropna().nunique())

    @property
    def rows_valid(self) -> int:
        return 0 if self.rows is None else len(self.rows)


def ingest(new: NewFile, fiscal_year: int | None = None) -> FileBatch:
    """Read and validate one new file (never raises for bad input); a file of no known kind is rejected."""
    if new.kind is None:
        batch = FileBatch(path=new.path, file_name=new.label, sha256=new.sha256, kind="unknown")
        return reject_file(
            batch,
            f"{new.label}: 不是可识别的导出文件 — not a recognisable export; put exports in raw/payments, "
            "raw/refunds or raw/budget as xlsx, xls, csv or txt",
            "unknown_file",
            None,
        )
    batch = ingest_file(new.path, new.kind, sha256=new.sha256, fiscal_year=fiscal_year, label=new.label)
    log.info(
        "%s (%s): read %d rows, %d valid, %d rejected, %d skipped%s",
        new.label,
        new.kind,
        batch.rows_read,
        batch.rows_valid,
        batch.rows_rejected,
        batch.rows_skipped,
        f" — {batch.error}" if batch.error else "",
    )
    return batch


def ingest_file(
    path: Path, kind: str, *, sha256: str | None = None, fiscal_year: int | None = None, label: str | None = None
) -> FileBatch:
    """Read, parse and validate one file of the given kind. Never raises for bad input."""
    spec = load_spec()
    label = label or path.name
    batch = FileBatch(path=path, file_name=label, sha256=sha256 or sha256_of(path), kind=kind)
    try:
        grid = read_grid(path, find_header=lambda rows: find_header(rows, spec.kinds[kind]))
        batch.sheet, batch.encoding, batch.rows_read = grid.sheet, grid.encoding, grid.rows_total
        ex = extract(grid, kind, label, spec=spec)
        del grid  # the whole text grid; ex keeps what validation needs (peak memory of a 1M-row file)
    except UnreadableFile as e:
        return reject_file(batch, f"{label}: {e} — 无法读取，不是可用的导出文件，已跳过", "unreadable_file", None)
    except FileError as e:
        return reject_file(batch, str(e), e.check, e.column)
    batch.units, batch.control_total, batch.notes = ex.units, ex.control_total, list(ex.notes)
    if ex.effective_date:
        batch.notes.append(f"budget version effective from {ex.effective_date} (title marker)")
    batch.rows_skipped = ex.rows_skipped
    if kind == "budget":
        batch.fiscal_year = ex.fiscal_year or fiscal_year
        if batch.fiscal_year is None:
            return reject_file(
                batch,
                f"{label}: 预算表标题中没有年度（如“2025年…”），配置中也没有 fiscal_year — "
                "the fiscal year of a budget sheet comes from its title or the config",
                "fiscal_year",
                "fiscal_year",
            )
    _validate(batch, ex)
    for note in batch.notes:
        log.info("%s: %s", label, note)
    accounted = batch.rows_valid + batch.rows_rejected + batch.rows_skipped
    if accounted != batch.rows_read:  # a bug, never bad input: stop before loading anything wrong
        raise AssertionError(f"{label}: row accounting broken: read {batch.rows_read} != {accounted}")
    return batch


def reject_file(batch: FileBatch, message: str, check: str, column: str | None) -> FileBatch:
    log.warning("%s", message)
    batch.status, batch.error = "rejected", message
    batch.rejects = pd.DataFrame(
        [{"source_row": None, "column": column, "value": None, "check": check, "message": message}],
        columns=REJECT_COLUMNS,
    )
    batch.rows = None
    return batch


def _frame(ex: Extracted, kind: str, fiscal_year: int | None) -> pd.DataFrame:
    model = MODELS[kind]
    n = len(ex.source_row)
    data: dict[str, pd.Series] = {"source_row": pd.Series(ex.source_row.to_numpy(zero_copy_only=False))}
    for name, ftype in model.to_schema().columns.items():
        if name == "source_row":
            continue
        if name == "fiscal_year":
            data[name] = pd.Series([fiscal_year] * n, dtype="int64")
            continue
        arr = ex.columns.get(name)
        if arr is None:
            arr = pa.nulls(n, pa.int64() if "Int64" in str(ftype.dtype) else pa.string())
        if pa.types.is_int64(arr.type):
            data[name] = pd.Series(pd.array(arr.to_pylist() if arr.null_count else arr.to_numpy(), dtype="Int64"))
        elif pa.types.is_date32(arr.type):
            data[name] = pd.Series(pc.cast(arr, pa.timestamp("ms")).to_pandas())
        else:
            data[name] = pd.Series(arr.to_pandas(), dtype="str")
    return pd.DataFrame(data)


def _validate(batch: FileBatch, ex: Extracted) -> None:
    kind = batch.kind
    df = _frame(ex, kind, batch.fiscal_year)
    if kind == "refunds":
        df["refund_amt"] = df["refund_amt"].abs()  # notices show refunds positive or negative
    amount = {"payments": "pay_amt", "refunds": "refund_amt"}.get(kind)
    if kind == "budget":
        amount = "cur_amt" if "cur_amt" in ex.columns else "reply_amt"
    batch.parsed_total = int(df[amount].sum()) if amount in df and df[amount].notna().any() else 0

    failures: list[dict] = []
    seen: set[tuple[int, str]] = set()
    for column, err in ex.errors:
        for pos in pc.indices_nonzero(pc.is_valid(err)).to_pylist():
            seen.add((pos, column))
            failures.append({"pos": pos, "column": column, "check": "parse", "message": err[pos].as_py()})
    schema = MODELS[kind].to_schema()
    try:
        schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as e:
        fc = e.failure_cases
        for row in fc.itertuples(index=False):
            if row.index is None or pd.isna(row.index):
                # a schema-level failure (e.g. a dtype) that names no row: reject the file's rows wholesale
                failures.extend(
                    {
                        "pos": p,
                        "column": row.column,
                        "check": str(row.check),
                        "message": message_for(row.column, str(row.check)),
                    }
                    for p in range(len(df))
                )
                continue
            pos = int(row.index)
            check = str(row.check)
            # a whole-row check is reported by pandera once per column: file it under the column it is about
            column = _dataframe_check_column(check) or (
                row.column if isinstance(row.column, str) and row.column in df.columns else None
            )
            if (pos, column) in seen:
                continue
            seen.add((pos, column))
            failures.append(
                {
                    "pos": pos,
                    "column": column,
                    "check": check.split("(")[0],
                    "message": _message(df, pos, column, check),
                }
            )
    bad_positions = sorted({f["pos"] for f in failures})
    rejects = []
    if failures:
        texts = _row_texts(ex, bad_positions)
        units = _row_units(ex, failures)
        for f in failures:
            pos, column = f["pos"], f["column"]
            raw = ex.raw.get(column)
            value = raw[pos].as_py() if raw is not None else None
            header = ex.header.texts.get(ex.header.columns.get(column, -1), column)
            rejects.append(
                {
                    "source_row": int(df["source_row"].iat[pos]),
                    "column": column,
                    "value": value,
                    "check": f["check"],
                    "message": f"{header}「{value if value is not None else ''}」: {f['message']}",
                    "row_text": texts[pos],
                    **units[pos],
                }
            )
    for r in ex.odd_rejects:
        rejects.append({**r, "row_text": r["value"]})
    batch.rejects = pd.DataFrame(rejects, columns=REJECT_COLUMNS)
    keep = np.ones(len(df), dtype=bool)
    keep[bad_positions] = False
    pos = keep.nonzero()[0]
    # From here on only the valid rows are needed: drop the parsed and raw arrays the frame was made from (the
    # frame's text columns share their buffers), then keep the valid rows column by column, so the rows never
    # exist twice (a 1M-row file: ~400 MiB less at the peak).
    ex.columns.clear()
    ex.raw.clear()
    valid = _take_rows(df, pos) if bad_positions else df
    del df
    if kind == "budget":
        valid = _complete_budget(valid, ex.effective_date)
    batch.rows = valid.reset_index(drop=True)
    if ex.extras and len(valid):
        parts = []
        for header, arr in ex.extras.items():
            values = pd.Series(arr.take(pa.array(pos)).to_pandas(), dtype="str")
            frame = pd.DataFrame(
                {"source_row": valid["source_row"].to_numpy(), "header": header, "value": values.to_numpy()}
            )
            parts.append(frame[frame["value"].str.strip() != ""])
        batch.extras = pd.concat(parts, ignore_index=True) if parts else None


def _take_rows(df: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The rows at ``positions`` (a new index), copying one column at a time and emptying ``df`` as it goes."""
    out = {}
    for name in list(df.columns):
        out[name] = df[name].take(positions).reset_index(drop=True)
        del df[name]
    return pd.DataFrame(out)


def _dataframe_check_column(check: str) -> str | None:
    return {
        "negative_needs_original": "pay_amt",
        "cur_equals_reply_plus_adj": "cur_amt",
        "unique_project": "pro_code",
    }.get(check.split("(")[0])


def _yuan(fen) -> str:
    return "" if pd.isna(fen) else f"{int(fen) / 100:,.2f}" if abs(int(fen)) < 2**52 else str(fen)


def _message(df: pd.DataFrame, pos: int, column: str | None, check: str) -> str:
    name = check.split("(")[0]
    if name == "cur_equals_reply_plus_adj":
        r = df.iloc[pos]
        return (
            f"全年预算数 {_yuan(r['cur_amt'])} ≠ 年初预算数 {_yuan(r['reply_amt'])} + 调整预算数 {_yuan(r['adj_amt'])}"
            f" = {_yuan(r['reply_amt'] + r['adj_amt'])} (yuan)"
        )
    return message_for(column, name)


UNIT_COLUMNS = ("agency_code", "agency_name", "ori_pay_cert_no")


def _row_units(ex: Extracted, failures: list[dict]) -> dict[int, dict[str, str | None]]:
    """Per rejected row: the cells that tell whose row it is (agency code, agency name, original voucher), each
    as parsed (a title line's 预算单位 included) unless that very cell is what failed."""
    failed = {(f["pos"], f["column"]) for f in failures}
    out: dict[int, dict[str, str | None]] = {}
    for pos in {f["pos"] for f in failures}:
        cells: dict[str, str | None] = {}
        for name in UNIT_COLUMNS:
            arr = ex.columns.get(name)
            value = arr[pos].as_py() if arr is not None and (pos, name) not in failed else None
            cells[name] = (value.strip() or None) if isinstance(value, str) else None
        out[pos] = cells
    return out


def _row_texts(ex: Extracted, positions: list[int]) -> dict[int, str]:
    take = pa.array(positions, pa.int64())
    cols = {ex.header.texts.get(ex.header.columns[n], n): arr.take(take).to_pylist() for n, arr in ex.raw.items()}
    cols.update({h: arr.take(take).to_pylist() for h, arr in ex.extras.items()})
    return {
        p: " | ".join(f"{h}={vals[i]}" for h, vals in cols.items() if vals[i] not in (None, ""))
        for i, p in enumerate(positions)
    }


def _complete_budget(df: pd.DataFrame, title_date: dt.date | None = None) -> pd.DataFrame:
    """Derive the missing one of cur_amt / adj_amt (CONTRACT.md 1.3); no carry-over column means none.

    effective_date is the date this sheet's version takes effect: the row's 调整日期, else its 批复日期/下达日期, else
    the title's marker; NULL when the sheet gives none (the warehouse then counts it from January 1 of its year)."""
    df = df.copy()
    title = pd.Series(pd.Timestamp(title_date) if title_date else pd.NaT, index=df.index, dtype="datetime64[ms]")
    df["effective_date"] = (
        df["adjusted_on"].astype("datetime64[ms]").fillna(df["approved_on"].astype("datetime64[ms]")).fillna(title)
    )
    adj_missing = df["adj_amt"].isna()
    cur_missing = df["cur_amt"].isna()
    df.loc[adj_missing & ~cur_missing, "adj_amt"] = df["cur_amt"] - df["reply_amt"]
    df["adj_amt"] = df["adj_amt"].fillna(0)
    df.loc[cur_missing, "cur_amt"] = df["reply_amt"] + df["adj_amt"]
    df["carryover_amt"] = df["carryover_amt"].fillna(0)
    return df
