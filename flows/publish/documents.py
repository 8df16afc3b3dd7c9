"""One unit's documents as files: the workbook and the draft paragraph, each written to a temporary name in the
unit's folder and moved into place with ``os.replace``, so a reader never sees half a file. Pure Python, no DuckDB:
``write_documents`` runs in a workbook worker process (flows/publish/worker.py) or, for few units, in the run's.

A publish killed while it writes leaves its temporary files behind (never a half file under a final name): the next
publish into the same folder removes them first (``publishing``), as the warehouse's Build removes its stale copies.
Only names of exactly ``tmp_for``'s pattern are removed, never a user's file."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from flows.publish.paragraph import funds_paragraph
from flows.publish.unit import UnitData
from flows.publish.workbook import build_workbook

log = logging.getLogger("treasury_recon.publish")

_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')

DOCUMENT_PREFIXES = ("预算执行_", "资金情况说明_", "运维报告_")  # the workbook, the paragraph, the operator report
TEMP_SUFFIXES = ("xlsx", "md", "csv", "parquet")


def safe_part(text: Any) -> str:
    """A file-name component from data: no separators, no leading dots (no '..')."""
    cleaned = _UNSAFE_NAME.sub("_", str(text)).strip().lstrip(".")
    return cleaned or "_"


def tmp_for(path: Path) -> Path:
    """``.<stem>.<8 hex>.tmp<suffix>`` beside ``path`` (the pattern ``temp_name_pattern`` recognises)."""
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def temp_name_pattern(prefixes: Iterable[str]) -> re.Pattern[str]:
    """The names ``tmp_for`` gives the outputs whose final names start with one of ``prefixes``: one dot, the final
    stem, 8 hex digits, ``.tmp`` and the suffix; or, for a CSV copy's raw file (``tmp_for`` of a temporary name),
    two dots and two hex parts. Nothing else matches: a user's ``.预算执行_草稿.xlsx`` or ``x.tmp.xlsx`` stays."""
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes))
    return re.compile(
        rf"\.(?:\.)?(?:{alternatives})[^/]*?\.[0-9a-f]{{8}}\.tmp(?:\.[0-9a-f]{{8}}\.tmp)?"
        rf"\.(?:{'|'.join(TEMP_SUFFIXES)})"
    )


def remove_stale_temps(out_dir: Path, prefixes: Iterable[str]) -> list[Path]:
    """Remove the temporary files an interrupted publish left in the folders a publish writes (``out_dir/<unit>/``,
    ``out_dir/<unit>/marts/``, ``out_dir/operator/``); only names matching ``temp_name_pattern(prefixes)``.
    Call it holding ``publishing(out_dir)``: another publish's files in flight are never touched."""
    pattern = temp_name_pattern(prefixes)
    removed = []
    folders = [f for f in Path(out_dir).glob("*") if f.is_dir()]
    folders += [f / "marts" for f in folders if (f / "marts").is_dir()]
    for folder in folders:
        for entry in folder.iterdir():
            if pattern.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
                log.warning("removing %s left by an interrupted publish", entry)
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


@contextmanager
def publishing(out_dir: Path, prefixes: Iterable[str] = DOCUMENT_PREFIXES) -> Iterator[list[Path]]:
    """Hold the publish lock of ``out_dir`` (an flock on the folder itself: no lock file among the outputs; released
    by the kernel when the process dies), then remove what an interrupted publish left there. Two publishes into
    one folder run one after the other, so neither removes the other's files in flight. Yields the removed paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another publish into %s to finish", out_dir)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield remove_stale_temps(out_dir, prefixes)
    finally:
        os.close(fd)  # releases the flock


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Write via ``write(tmp)`` to a temporary file beside ``path``, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_for(path)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _fsync(path: Path) -> None:
    """Flush a file's data to disk before it is moved into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unit_folder(data: UnitData, out_dir: Path) -> Path:
    """out_dir/<agency_code>_<fiscal_year>: where one unit's outputs go."""
    return Path(out_dir) / f"{safe_part(data.agency_code)}_{data.fiscal_year}"


def write_documents(
    data: UnitData,
    out_dir: Path,
    behind_warning_pp: Decimal | None = None,
    behind_critical_pp: Decimal | None = None,
) -> list[Path]:
    """The workbook and the draft paragraph of one unit: pure Python, no warehouse (runs in a worker process when
    several units are published)."""
    code, year, as_of = safe_part(data.agency_code), data.fiscal_year, data.as_of.isoformat()
    folder = unit_folder(data, out_dir)
    wb = build_workbook(data)
    text = funds_paragraph(data, behind_warning_pp=behind_warning_pp, behind_critical_pp=behind_critical_pp)
    return [
        write_atomic(folder / f"预算执行_{code}_{year}_{as_of}.xlsx", lambda tmp: wb.save(tmp)),
        write_atomic(folder / f"资金情况说明_{code}_{year}_{as_of}.md", lambda tmp: tmp.write_text(text, "utf-8")),
    ]
