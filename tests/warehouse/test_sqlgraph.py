"""The SQL graph (flows/warehouse/sqlgraph.py): every header declares what its body reads, the build order follows
it, and exceptions is the union of exactly the registry's rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.warehouse import db, sqlgraph, transform

GRAPH = sqlgraph.relations()
BY_NAME = {r.name: r for r in GRAPH}


@pytest.mark.parametrize("rel", GRAPH, ids=[r.name for r in GRAPH])
def test_every_header_reads_exactly_what_its_body_reads(rel: sqlgraph.Relation):
    assert sqlgraph.body_reads(rel.body) == set(rel.reads), rel.path


@pytest.mark.parametrize("rel", GRAPH, ids=[r.name for r in GRAPH])
def test_every_file_says_what_it_is_and_its_grain(rel: sqlgraph.Relation):
    first = sqlgraph.header(rel.body)[0]
    assert re.match(rf"-- {rel.name}( \(.*?\))?: ", first), rel.path
    assert any(line.startswith("-- Grain: one row per") for line in sqlgraph.header(rel.body)), rel.path


def test_layers_read_forwards_only():
    """Staging reads sources only; intermediate reads staging and intermediate; rules never read marts."""
    allowed = {
        "staging": {"source"},
        "intermediate": {"source", "staging", "intermediate"},
        "rules": {"source", "staging", "intermediate", "rules"},
        "marts": {"source", "staging", "intermediate", "rules", "marts"},
        "alerts": {"marts"},
    }
    for rel in GRAPH:
        layers = {BY_NAME[n].layer if n in BY_NAME else "source" for n in rel.reads}
        assert layers <= allowed[rel.layer], (rel.name, layers)


def test_build_order_puts_every_relation_after_what_it_reads():
    seen: set[str] = set()
    for rel in GRAPH:
        assert all(n in seen or n in sqlgraph.sources() for n in rel.reads), rel.name
        seen.add(rel.name)


def _rel(name: str, *reads: str) -> sqlgraph.Relation:
    return sqlgraph.Relation(name, "marts", "view", reads, "", Path(f"sql/marts/{name}.sql"))


def test_a_cycle_is_an_error_naming_the_files():
    with pytest.raises(sqlgraph.GraphError, match=r"cycle.*a\.sql.*b\.sql"):
        sqlgraph.build_order([_rel("a", "b"), _rel("b", "a"), _rel("c")])


def test_an_unknown_relation_is_an_error_naming_the_file():
    with pytest.raises(sqlgraph.GraphError, match=r"sql/marts/a\.sql.*names nowhere"):
        sqlgraph.build_order([_rel("a", "nowhere")], frozenset({"raw_payments"}))


def test_build_order_is_topological_and_stable():
    order = sqlgraph.build_order([_rel("c", "b"), _rel("b", "raw"), _rel("a", "raw")], frozenset({"raw"}))
    assert [r.name for r in order] == ["b", "a", "c"]


def test_a_missing_kind_is_an_error(tmp_path, monkeypatch):
    layer = tmp_path / "marts"
    layer.mkdir()
    (layer / "m.sql").write_text("-- m: a mart.\n-- Grain: one row.\n-- Reads: none.\nselect 1\n")
    monkeypatch.setattr(sqlgraph, "SQL_DIR", tmp_path)
    with pytest.raises(sqlgraph.GraphError, match=r"sql/marts/m\.sql: the header has no 'Kind:' line"):
        sqlgraph.parse(layer / "m.sql", "marts")


def test_the_tokenizer_skips_ctes_subqueries_comments_and_strings():
    sql = """
    -- from commented_out
    with a as (select * from x), b as not materialized (select 1 from a join "Y" as y on true)
    select 'from nowhere', (select 1 from b) from (select * from z.main.w) as s left join a on true
    """
    assert sqlgraph.body_reads(sql) == {"x", "y", "w"}


def test_exceptions_is_the_union_of_exactly_the_registry_rules():
    kinds = [r["kind"] for r in sqlgraph.registry()]
    body = BY_NAME["exceptions"].body
    branches = re.findall(r"'([a-z_]+)' as kind,.*?from (rule_[a-z_]+)", body, flags=re.S)
    assert [k for k, _ in branches] == kinds
    assert all(rule == f"rule_{k}" for k, rule in branches)
    assert {n for n in BY_NAME if n.startswith("rule_")} == {f"rule_{k}" for k in kinds}


def test_per_as_of_tables_come_from_the_declared_kind():
    names = [name for name, _ in db.as_of_definitions()]
    assert set(names) == {r.name for r in GRAPH if r.kind == "per_as_of"}
    assert {"execution_by_project", "exceptions", "self_assessment_funds"} <= set(names)
    assert names.index("exceptions") > names.index("carryover_squeeze")
    assert names.index("self_assessment_funds") > names.index("execution_by_unit")


def test_reconcile_snapshots_are_views_in_build_order():
    order = [r.name for r in GRAPH]
    assert all(BY_NAME[n].kind == "view" for n in transform.SHARED)
    assert [order.index(n) for n in transform.SHARED] == sorted(order.index(n) for n in transform.SHARED)


def test_every_label_domain_is_loaded():
    assert sqlgraph.labels("kind")["unbudgeted"] == "无预算支出"
    assert sqlgraph.labels("severity") == {"fatal": "严重", "warning": "警告", "info": "提示"}
    assert sqlgraph.labels("alert_severity")["warning"] == "预警"
    assert set(sqlgraph.labels("alert_kind")) >= {"behind_plan", "exception", "run_failed"}
    assert set(sqlgraph.labels("squeeze_rule")) == {"prior_year_text", "carryover_excess"}
