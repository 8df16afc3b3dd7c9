"""The SQL graph: what every file under sql/ declares in its header, and the order to build it in.

Pure Python (no DuckDB): the warehouse builds from it, the tests check it, the workbook workers read the labels.

Every relation is one file, ``sql/<layer>/<name>.sql``, whose header (its leading ``--`` comment lines) says what it
is and declares:

- ``Kind:`` ``view`` (built by ``warehouse.build_views``), ``per_as_of`` (a table keeping one set of rows per as-of
  date, filled by the reconcile step) or ``step`` (built by the pipeline step that needs it, e.g. the alert
  candidates);
- ``Grain:`` one row per …;
- ``Reads:`` the relations its body reads, comma-separated, ending with a full stop (``none.``: session variables
  only). The build order is the
  topological order of these edges; a test checks each header against the names the body reads (``body_reads``).

Sources are the tables of ``sql/schema/tables.sql`` and the reference tables loaded from ``REFERENCE`` files.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
LAYERS = ("staging", "intermediate", "rules", "marts", "alerts")  # the data flow, in order
PREFIXES = {"staging": "stg_", "intermediate": "int_", "rules": "rule_"}
KINDS = ("view", "per_as_of", "step")
REFERENCE = {  # reference tables loaded by warehouse.ensure_schema, from these files of sql/rules
    "rule_registry": "registry.csv",
    "ref_labels": "labels.csv",
}


class GraphError(ValueError):
    """A header that cannot be built from: missing or unknown Kind, an unknown relation in Reads, a cycle."""


@dataclass(frozen=True)
class Relation:
    name: str
    layer: str
    kind: str  # view | per_as_of | step
    reads: tuple[str, ...]
    body: str
    path: Path


_HEADER_FIELD = re.compile(r"^--\s*(Kind|Grain|Reads):\s*(.*)$")
_CREATE_TABLE = re.compile(r"create\s+table\s+if\s+not\s+exists\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)


def header(text: str) -> list[str]:
    """The leading comment lines of a SQL file, without ``noqa`` directives."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        if not line.startswith("-- noqa"):
            lines.append(line)
    return lines


def parse(path: Path, layer: str) -> Relation:
    """The relation a file defines, from its header; GraphError naming the file when a field is missing or wrong."""
    text = path.read_text(encoding="utf-8")
    fields: dict[str, str] = {}
    lines = header(text)
    for i, line in enumerate(lines):
        m = _HEADER_FIELD.match(line)
        if m:
            value = m.group(2)
            if m.group(1) == "Reads":  # may continue on the next comment lines until its full stop
                for more in lines[i + 1 :]:
                    if value.rstrip().endswith("."):
                        break
                    value += " " + more.lstrip("-").strip()
            fields.setdefault(m.group(1), value.strip())
    rel = path.relative_to(SQL_DIR)
    for required in ("Kind", "Grain", "Reads"):
        if required not in fields:
            raise GraphError(f"sql/{rel}: the header has no '{required}:' line")
    kind = fields["Kind"].split()[0].rstrip(".") if fields["Kind"] else ""
    if kind not in KINDS:
        raise GraphError(f"sql/{rel}: Kind must be one of {', '.join(KINDS)}, got {fields['Kind']!r}")
    reads_text = fields["Reads"]
    if not reads_text.endswith("."):
        raise GraphError(f"sql/{rel}: 'Reads:' must end with a full stop")
    reads = () if reads_text == "none." else tuple(r.strip() for r in reads_text[:-1].split(",") if r.strip())
    if not all(re.fullmatch(r"[a-z_][a-z0-9_]*", r) for r in reads):
        raise GraphError(f"sql/{rel}: 'Reads:' lists relation names only, got {reads_text!r}")
    prefix = PREFIXES.get(layer)
    if prefix and not path.stem.startswith(prefix):
        raise GraphError(f"sql/{rel}: a relation of sql/{layer}/ is named {prefix}*")
    return Relation(path.stem, layer, kind, reads, text, path)


def sources() -> frozenset[str]:
    """The tables the graph reads but does not define: raw and log tables, and the reference tables."""
    tables = _CREATE_TABLE.findall((SQL_DIR / "schema" / "tables.sql").read_text(encoding="utf-8"))
    return frozenset(tables) | frozenset(REFERENCE)


def relations() -> list[Relation]:
    """Every relation of sql/<layer>/, in build order: each after everything it reads (ties: layer, then name)."""
    found = [parse(path, layer) for layer in LAYERS for path in sorted((SQL_DIR / layer).glob("*.sql"))]
    return build_order(found, sources())


def build_order(found: list[Relation], known_sources: frozenset[str] = frozenset()) -> list[Relation]:
    """Topological order of ``found`` by their Reads (Kahn's algorithm, stable by the order given)."""
    by_name: dict[str, Relation] = {}
    for r in found:
        if r.name in by_name:
            raise GraphError(f"{r.path}: relation {r.name} is also defined in {by_name[r.name].path}")
        by_name[r.name] = r
    for r in found:
        for name in r.reads:
            if name not in by_name and name not in known_sources:
                raise GraphError(f"{r.path}: 'Reads:' names {name}, which no sql file defines and no table is")
            if name == r.name:
                raise GraphError(f"{r.path}: {r.name} reads itself")
    done: set[str] = set()
    ordered: list[Relation] = []
    pending = list(found)
    while pending:
        ready = [r for r in pending if all(n in done or n not in by_name for n in r.reads)]
        if not ready:
            cycle = ", ".join(
                f"{r.path.name} (reads {', '.join(n for n in r.reads if n not in done)})" for r in pending
            )
            raise GraphError(f"the Reads: headers form a cycle among: {cycle}")
        for r in ready:
            ordered.append(r)
            done.add(r.name)
        pending = [r for r in pending if r.name not in done]
    return ordered


# --------------------------------------------------------------------------------------------------------------
# What a body reads: a small tokenizer, enough for this project's SQL (FROM / JOIN targets, CTE names excluded)

_TOKEN = re.compile(
    r"""(?P<comment>--[^\n]*)|(?P<string>'(?:[^']|'')*')|(?P<quoted>"(?:[^"]|"")*")"""
    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_.]*)|(?P<punct>[(),;])|(?P<other>\S)""",
)


def tokens(sql: str) -> list[str]:
    """Words (lower-cased, quoted identifiers unquoted) and ( ) , ; — comments and string literals dropped."""
    out = []
    for m in _TOKEN.finditer(sql):
        if m.lastgroup in ("comment", "string", "other"):
            continue
        if m.lastgroup == "quoted":
            out.append(m.group().strip('"').replace('""', '"').lower())
        else:
            out.append(m.group().lower())
    return out


def body_reads(sql: str) -> set[str]:
    """The relations a query reads: every FROM / JOIN target that is not one of its CTEs or a subquery."""
    words = tokens(sql)
    ctes = set()
    for i, w in enumerate(words):
        # "<name> as (" or "<name> as [not] materialized (" directly after WITH or a comma
        if i and words[i - 1] in ("with", ",", "recursive") and words[i + 1 : i + 2] == ["as"]:
            rest = words[i + 2 : i + 5]
            if rest[:1] == ["("] or rest[:2] == ["materialized", "("] or rest[:3] == ["not", "materialized", "("]:
                ctes.add(w)
    read = set()
    for i, w in enumerate(words[:-1]):
        if w in ("from", "join"):
            target = words[i + 1]
            if target == "(" or not re.match(r"[a-z_]", target):
                continue
            name = target.split(".")[-1]
            if name not in ctes:
                read.add(name)
    return read


# --------------------------------------------------------------------------------------------------------------
# Reference data: the rule registry and the Chinese labels, one source for SQL and Python


def _csv(name: str) -> list[dict[str, str]]:
    with (SQL_DIR / "rules" / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def registry() -> list[dict[str, str]]:
    """sql/rules/registry.csv: one row per rule (kind, severity, category, message, kind_zh)."""
    return _csv(REFERENCE["rule_registry"])


@functools.cache
def labels(domain: str) -> dict[str, str]:
    """code -> Chinese label of one domain of sql/rules/labels.csv (``severity``, ``alert_severity``,
    ``alert_kind``, ``squeeze_rule``), plus the rule kinds of the registry for domain ``kind``."""
    if domain == "kind":
        return {r["kind"]: r["kind_zh"] for r in registry()}
    found = {r["code"]: r["label_zh"] for r in _csv(REFERENCE["ref_labels"]) if r["domain"] == domain}
    if not found:
        raise KeyError(f"sql/rules/labels.csv has no labels of domain {domain!r}")
    return found
