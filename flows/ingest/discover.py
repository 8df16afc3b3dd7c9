"""Find the new files in raw/: every file whose content (sha256) the warehouse has not recorded, with its kind
(from its folder, else from the header its first rows hold). Never opens DuckDB: the caller passes the hashes
already known (``flows.warehouse.db.known_files``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from flows.ingest.extract import find_header
from flows.ingest.read import SPREADSHEET_SUFFIXES, TEXT_SUFFIXES, UnreadableFile, read_grid
from schemas.spec import KINDS, load_spec


@dataclass(frozen=True)
class NewFile:
    path: Path
    label: str  # the path relative to raw/, as recorded in source_files.file_name
    kind: str | None  # None: not a recognisable export (reported, never loaded)
    sha256: str


@dataclass(frozen=True)
class Skipped:
    """A file whose content (sha256) was already read: the same file again, or a copy under another name."""

    label: str
    sha256: str
    same_as: str  # the name under which this content was first read
    empty: bool = False

    @property
    def is_copy(self) -> bool:
        return self.label != self.same_as

    @property
    def message(self) -> str:
        if self.empty:
            return f"{self.label}: 文件为空（0 字节），已跳过 — the file is empty (0 bytes)"
        return (
            f"{self.label}: 与 {self.same_as} 内容完全相同，已载入过，不再重复载入 — "
            f"identical to {self.same_as}, already loaded"
        )


def discover(raw_dir: Path, known: dict[str, str]) -> tuple[list[NewFile], list[Skipped]]:
    """Files under raw_dir not yet in the warehouse (by sha256), in a stable order, and the files skipped because
    their content was already read (a copy under another name among them: ``Skipped.is_copy``).

    The kind comes from the folder (raw/payments, raw/refunds, raw/budget) or, for files elsewhere, from the
    header their first rows contain. Hidden files and Excel lock files (~$…) are ignored.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw folder {raw_dir} does not exist")
    found: list[NewFile] = []
    skipped: list[Skipped] = []
    for path in sorted(p for p in raw_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(raw_dir)
        if any(part.startswith(".") for part in rel.parts) or path.name.startswith("~$"):
            continue
        sha = sha256_of(path)
        if sha in known:
            skipped.append(Skipped(rel.as_posix(), sha, known[sha], empty=path.stat().st_size == 0))
            continue
        kind = kind_of(path, raw_dir)
        if kind is None and path.suffix.lower() in SPREADSHEET_SUFFIXES | TEXT_SUFFIXES:
            kind = guess_kind(path)
        found.append(NewFile(path, rel.as_posix(), kind, sha))
        known = {**known, sha: rel.as_posix()}  # the same content twice in one run is loaded once
    return found, skipped


def no_export_message(raw_dir: Path) -> str | None:
    """The one line saying raw_dir holds no file at all (hidden files aside), or None when it holds some."""
    raw_dir = Path(raw_dir)
    for path in raw_dir.rglob("*"):
        rel = path.relative_to(raw_dir)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            return None
    return (
        f"no export found under {raw_dir}: put the treasury and budget exports (xlsx, xls, csv, txt) in "
        f"{raw_dir / 'payments'}, {raw_dir / 'refunds'} and {raw_dir / 'budget'}"
    )


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def kind_of(path: Path, raw_dir: Path | None = None) -> str | None:
    """The input kind from the landing folder: raw/payments, raw/refunds, raw/budget."""
    parts = path.relative_to(raw_dir).parts if raw_dir else path.parts
    for part in parts[:-1]:
        if part in KINDS:
            return part
    return None


def guess_kind(path: Path) -> str | None:
    """For a file outside the kind folders: the kind whose header its first rows contain."""
    spec = load_spec()
    for kind in ("payments", "refunds", "budget"):
        try:
            grid = read_grid(path, find_header=lambda rows, k=kind: find_header(rows, spec.kinds[k]))
        except UnreadableFile:
            return None
        if find_header(grid.head(60), spec.kinds[kind]) is not None:
            return kind
    return None
