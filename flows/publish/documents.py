"""One unit's documents as files: the workbook and the draft paragraph, each written to a temporary name in the
unit's folder and moved into place with ``os.replace``, so a reader never sees half a file. Pure Python, no DuckDB:
``write_documents`` runs in a workbook worker process (flows/publish/worker.py) or, for few units, in the run's."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from flows.publish.paragraph import funds_paragraph
from flows.publish.unit import UnitData
from flows.publish.workbook import build_workbook

_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def safe_part(text: Any) -> str:
    """A file-name component from data: no separators, no leading dots (no '..')."""
    cleaned = _UNSAFE_NAME.sub("_", str(text)).strip().lstrip(".")
    return cleaned or "_"


def tmp_for(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


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
