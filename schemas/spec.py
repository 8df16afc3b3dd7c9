"""The input specification: header aliases, status words and row markers, read from headers.toml.

Everything a new vendor's export needs (one more alias, one more status word) is a line in headers.toml.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

HEADERS_TOML = Path(__file__).with_name("headers.toml")
KINDS = ("payments", "refunds", "budget")

_UNIT_SUFFIX = re.compile(r"\((万元|元)\)$")
_SPACES = re.compile(r"\s+")


def normalize_header(text: object) -> tuple[str, str | None]:
    """Return (header key, unit) for a header cell: NFKC, no whitespace, trailing (元)/(万元) removed.

    >>> normalize_header("支付金额（元）")
    ('支付金额', '元')
    >>> normalize_header(" 年初预算数 (万元) ")
    ('年初预算数', '万元')
    """
    key = _SPACES.sub("", unicodedata.normalize("NFKC", str(text or "")))
    m = _UNIT_SUFFIX.search(key)
    if m:
        return key[: m.start()], m.group(1)
    return key, None


@dataclass(frozen=True)
class Column:
    name: str
    aliases: tuple[str, ...]
    type: str
    required: bool = False
    sub: bool = False


@dataclass(frozen=True)
class KindSpec:
    kind: str
    title: str
    default_unit: str
    amount_column: str
    fallback_amount_column: str | None
    columns: tuple[Column, ...]
    alias_to_column: dict[str, str] = field(hash=False, compare=False)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def accepted_headers(self, name: str) -> str:
        return "、".join(self.column(name).aliases)


@dataclass(frozen=True)
class Spec:
    kinds: dict[str, KindSpec]
    status_counted: frozenset[str]
    status_voided: frozenset[str]
    totals: tuple[str, ...]
    subtotals: tuple[str, ...]
    notes: tuple[str, ...]


@cache
def load_spec(path: Path = HEADERS_TOML) -> Spec:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    kinds = {}
    for kind in KINDS:
        section = data[kind]
        cols = []
        alias_map: dict[str, str] = {}
        for name, c in section["columns"].items():
            aliases = tuple(normalize_header(a)[0] for a in c["aliases"])
            cols.append(Column(name, aliases, c["type"], c.get("required", False), c.get("sub", False)))
            for a in aliases:
                if a in alias_map:
                    raise ValueError(f"{path}: alias {a!r} of {kind}.{name} already maps to {alias_map[a]}")
                alias_map[a] = name
        kinds[kind] = KindSpec(
            kind=kind,
            title=section["title"],
            default_unit=section["default_unit"],
            amount_column=section["amount_column"],
            fallback_amount_column=section.get("fallback_amount_column"),
            columns=tuple(cols),
            alias_to_column=alias_map,
        )
    return Spec(
        kinds=kinds,
        status_counted=frozenset(data["status"]["counted"]),
        status_voided=frozenset(data["status"]["voided"]),
        totals=tuple(data["rows"]["totals"]),
        subtotals=tuple(data["rows"]["subtotals"]),
        notes=tuple(data["rows"]["notes"]),
    )


def export_header(kind: str, columns: str, *, unit: str | None = None) -> list[str]:
    """The header row of an export of ``kind`` with the given columns, spelt from headers.toml (the one list of them).

    ``columns`` is space-separated: a canonical name gives that column's first alias; any other word must be one of
    the kind's aliases and is kept as written (exports spell headers differently). ``unit`` ("元" or "万元") adds
    "（unit）" to the money columns, as some exports do. For the demo samples, the generator and the tests, so no
    header list is written twice and none drifts from what the reader accepts.

    >>> export_header("refunds", "refund_no ori_pay_cert_no 退回日期 refund_amt")
    ['退回凭证号', '原支付凭证号', '退回日期', '退回金额']
    >>> export_header("budget", "pro_code reply_amt", unit="万元")
    ['项目编码', '年初预算数（万元）']
    """
    spec = load_spec().kinds[kind]
    names = {c.name: c for c in spec.columns}
    out = []
    for word in columns.split():
        if word in names:
            column, text = names[word], names[word].aliases[0]
        elif word in spec.alias_to_column:
            column, text = names[spec.alias_to_column[word]], word
        else:
            raise ValueError(f"{kind}: {word!r} is neither a column nor an alias in {HEADERS_TOML.name}")
        out.append(f"{text}（{unit}）" if unit and column.type == "money" else text)
    return out
