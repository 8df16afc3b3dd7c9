"""Benchmark of the reconcile step (rules + marts for one as-of date) on a large synthetic warehouse (not a test).

    python bench/bench_reconcile.py [--rows 1000000 [10000000 ...]] [--seed 20250101] [--as-of 2025-12-31]
                                    [--dir bench/data] [--keep] [--repeat 3] [--profile]

1. Builds, per row count, a warehouse with the real schema: ``warehouse.Build`` on a new file (``ensure_schema``
   creates the tables, macros and views), the raw tables filled by SQL inside DuckDB, ``Build.publish()``. This runs
   in its own process and is not measured; a warehouse kept by ``--keep`` for the same rows and seed is reused.
   What it holds, as the loader would have written it (``source_file_log`` rows included):
   - ``--rows`` rows in ``raw_payments`` (fiscal 2025) in 12 monthly exports (file rows numbered from 4, in date
     order): 300 budget units, 3,000 budgeted projects (3 % of them without any payment) and 150 unbudgeted ones
     (about 1 % of the rows), skewed so that a few projects take many payments. About 3 % voided, 0.1 % 待审核,
     1 % 支付成功, 0.5 % negative vouchers refunding an earlier voucher (原支付凭证号), carry-over money (a 2024
     指标文号 or 上年结转) on 30 % of the projects, 1.5 % prior-year text in 用途 and 0.5 % in 合同编号;
     2 % of the rows are a voucher exported again in the next month's file, 5 % of those with another amount (the
     later export wins). One export's 合计 differs from its rows.
   - a refund notice file with 0.25 % as many refunds (3 % of them naming a voucher that does not exist);
   - two budget sheets for 2025: every budgeted project (cur_amt about 0.85-1.45 times its current-year payments,
     so some are overspent; carry-over 0.9-1.4 times the carry-over payments; quarterly plans, 2 % not adding up,
     5 % without a plan) and a later sheet revising 10 % of them.
2. Measures ``--repeat`` fresh processes per warehouse: ``db.Build`` (the private copy) and imports before the
   clock; then ``flows.warehouse.transform.reconcile(con, as_of)`` inside ``build.transaction()`` is timed (the commit
   is reported apart), the peak RSS is ``getrusage(RUSAGE_SELF).ru_maxrss`` of that process (which never generated
   data: Linux carries a parent's ru_maxrss into its child), and the copy is abandoned, so every run starts from the
   same warehouse. Each ``con.execute`` of reconcile goes through a thin timing wrapper (a Python call per
   statement), which gives the time per mart and statement. CPU s is the user + system time of the measuring
   process during reconcile (all DuckDB threads); the 1-minute load average before and after is printed, since
   other processes on the machine slow the wall-clock time down.
3. ``--profile`` adds, on the first warehouse, one more process that materialises every staging and rule view and
   every as-of mart body on its own (``create temp table ... as select * from ...``) and EXPLAIN ANALYZEs the
   slowest mart body (top operators by time).

MiB = 2**20 bytes. The target (1,000,000 payments < 5 s) is checked on the reconcile time of the median run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for _p in (str(REPO), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

# Name lists and process helpers shared with the ingest benchmark (standard library only at import).
from bench_ingest import DEPARTMENTS, REGIONS, _commit, _maxrss_mib, _nproc, _proc_status_mib  # noqa: E402

TARGET_ROWS, TARGET_SECONDS = 1_000_000, 5.0
FISCAL_YEAR = 2025
N_UNITS, N_PROJECTS, N_UNBUDGETED = 300, 3_000, 150


# --------------------------------------------------------------------------------------------------------------------
# Synthetic warehouse (SQL inside DuckDB; every random draw is a hash of (row, seed, draw), so a seed gives the same
# warehouse on every run and thread count)
# --------------------------------------------------------------------------------------------------------------------

TOPICS = [
    "农村公路安保工程",
    "桥梁定期检测",
    "养护道班运行经费",
    "义务教育学校公用经费",
    "学生营养改善计划",
    "基本公共卫生服务",
    "高标准农田建设",
    "农村饮水安全巩固提升",
    "老旧小区改造",
    "城乡居民养老保险补助",
    "森林防火",
    "河道清淤整治",
    "信息化系统运维",
    "办公楼维修改造",
    "应急物资储备",
    "公共文化服务体系建设",
    "食品安全抽检",
    "人才引进专项",
    "乡村振兴衔接资金",
    "污水处理设施运行",
]
FUNC_CODES = ["2010101", "2050202", "2070109", "2080501", "2100302", "2110302", "2120501", "2130101", "2140106"]
ECO_CODES = ["30201", "30205", "30206", "30211", "30213", "30226", "30227", "30299", "31002", "31003", "30901"]
PLACES = ["示例", "东湖", "西山", "南岭", "北川", "清河", "白沙", "临江", "青石", "红旗", "光明", "长兴"]
BUSINESSES = [
    "路桥工程",
    "建筑安装",
    "机电维修",
    "检测技术",
    "汽车租赁",
    "信息技术",
    "办公用品",
    "医疗器械",
    "物业管理",
    "餐饮服务",
    "印务",
    "环保科技",
    "园林绿化",
    "劳务派遣",
    "电力工程",
    "水务",
    "商贸",
    "文化传媒",
    "会计师事务所",
    "律师事务所",
]
SUFFIXES = ["有限公司", "有限责任公司", "股份有限公司", "经营部", "工程队", "服务中心"]
USES = [
    "进度款",
    "工程尾款",
    "质保金",
    "设计费",
    "监理费",
    "设备购置",
    "设备维修",
    "办公用品采购",
    "水电费",
    "物业管理费",
    "印刷费",
    "差旅费",
    "会议费",
    "培训费",
    "劳务费",
    "专家咨询费",
    "网络运维服务费",
    "检测服务费",
    "材料采购款",
    "补助资金",
]


def _lit(values: list[str]) -> str:
    """A DuckDB list literal of text values (1-based when indexed)."""
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _pick(values: list[str], index_sql: str) -> str:
    """SQL picking values[index] for a 0-based integer expression."""
    return f"{_lit(values)}[1 + cast(({index_sql}) as bigint) % {len(values)}]"


def generation_sql(rows: int, seed: int) -> list[str]:
    """The statements that fill raw_payments, raw_refunds, raw_budget_lines and source_file_log."""
    seed = int(seed)
    n_dup = rows // 50  # re-exported vouchers (2 % of the rows)
    n_vouchers = rows - n_dup
    n_refunds = max(rows // 400, 1)
    mix = seed * 1_000_000_007 % 2**62
    fy = FISCAL_YEAR
    return [
        # h: a well-mixed 64-bit hash of (row, draw, seed); hash(a, b, c) of DuckDB correlates draws of one row.
        # u / u1: uniform in [0, 1) / (0, 1] from its top 53 bits.
        f"create or replace temp macro h(i, k) as hash(xor(cast(i as bigint) * 128 + k, {mix}))",
        "create or replace temp macro u(i, k) as ((h(i, k) >> 11) / 9007199254740992.0)",
        "create or replace temp macro u1(i, k) as (((h(i, k) >> 11) + 1) / 9007199254740992.0)",
        # units: region x department, distinct codes
        f"""
        create or replace temp table g_units as
        select
            x as unit_ix,
            printf('%06d', 100000 + 37 * x + cast(h(x, 1) % 30 as bigint)) as agency_code,
            {_pick(REGIONS, "x")} || {_pick(DEPARTMENTS, "x // 10")} as agency_name
        from range({N_UNITS}) as t(x)
        """,
        # projects: budgeted (with or without payments, with or without carry-over) and unbudgeted
        f"""
        create or replace temp table g_projects as
        select
            x as proj_ix,
            x < {N_PROJECTS} as budgeted,
            x < {N_PROJECTS} and u(x, 3) >= 0.03 as active,
            x < {N_PROJECTS} and u(x, 2) < 0.30 as has_carry,
            n.agency_code,
            n.agency_name,
            n.agency_code || '{fy % 100}' || printf('%05d', x) as pro_code,
            {_pick(TOPICS, "h(x, 4) % 1000")} || {_pick(["", "（一期）", "（二期）", "专项"], "x")} as pro_name,
            {_pick(FUNC_CODES, "h(x, 5) % 1000")} as exp_func_code,
            case when u(x, 6) < 0.85 then '一般公共预算资金' when u(x, 6) < 0.97 then '政府性基金预算资金'
                else '国有资本经营预算资金' end as fund_type,
            {_pick(["示财预", "示财建", "示财社"], "x")} || '〔{fy}〕' || cast(1 + h(x, 7) % 160 as varchar)
                || '号' as doc_cur,
            {_pick(["示财预", "示财建", "示财社"], "x + 1")} || '〔{fy - 1}〕'
                || cast(1 + h(x, 8) % 160 as varchar) || '号' as doc_prev
        from range({N_PROJECTS + N_UNBUDGETED}) as p(x)
        inner join g_units as n on n.unit_ix = cast(h(p.x, 9) % {N_UNITS} as bigint)
        """,
        """
        create or replace temp table g_active as
        select row_number() over (order by proj_ix) - 1 as pick, * from g_projects where active
        """,
        """
        create or replace temp table g_unbudgeted as
        select row_number() over (order by proj_ix) - 1 as pick, * from g_projects where not budgeted
        """,
        # one row per voucher, numbered in date order
        f"""
        create or replace temp table g_draw as
        select
            i,
            cast(floor(u(i, 10) * 365) as integer) as day_ix,
            u(i, 11) < 0.01 as to_unbudgeted,
            -- skewed: a few projects take many payments
            cast(floor(pow(u(i, 12), 2) * (select count(*) from g_active)) as bigint) as active_pick,
            cast(floor(u(i, 13) * {N_UNBUDGETED}) as bigint) as unbudgeted_pick,
            -- amount: log-normal around 30,000 yuan, whole fen, 40 % whole hundreds of yuan
            least(greatest(cast(round(exp(ln(30000) + 1.4 * sqrt(-2 * ln(u1(i, 14))) * cos(2 * pi() * u(i, 15)))
                * 100) as bigint), 1000), 500000000) as fen0,
            u(i, 16) < 0.4 as whole,
            u(i, 17) as r_status,
            u(i, 18) as r_refund,
            u(i, 19) as r_carry,
            u(i, 20) as r_text,
            u(i, 21) as r_contract,
            cast(h(i, 22) % 1440 as bigint) as payee_ix,
            u(i, 23) as r_pay_type,
            u(i, 24) as r_ori
        from range({n_vouchers}) as t(i)
        """,
        f"""
        create or replace temp table g_vouchers as
        with ranked as (
            select
                row_number() over (order by day_ix, i) as rank,
                *,
                date '{fy}-01-01' + day_ix as pay_date,
                case when whole then fen0 // 10000 * 10000 + 10000 else fen0 end as fen1
            from g_draw
        ),
        flagged as (
            select
                *,
                r_status >= 0.03 and r_refund < 0.005 and rank > 1 as is_refund,
                case when r_status >= 0.03 and r_refund < 0.005 and rank > 1
                    then 1 + cast(floor(r_ori * (rank - 1)) as bigint) end as ori_rank
            from ranked
        ),
        -- a negative voucher returns part of an earlier voucher (any status): same unit and project
        d as (
            select
                f.* replace (
                    coalesce(o.to_unbudgeted, f.to_unbudgeted) as to_unbudgeted,
                    coalesce(o.active_pick, f.active_pick) as active_pick,
                    coalesce(o.unbudgeted_pick, f.unbudgeted_pick) as unbudgeted_pick,
                    coalesce(o.fen1, f.fen1) as fen1
                )
            from flagged as f
            left join flagged as o on f.is_refund and o.rank = f.ori_rank
        ),
        j as (
            select
                d.*,
                coalesce(b.agency_code, a.agency_code) as agency_code,
                coalesce(b.agency_name, a.agency_name) as agency_name,
                coalesce(b.pro_code, a.pro_code) as pro_code,
                coalesce(b.pro_name, a.pro_name) as pro_name,
                coalesce(b.exp_func_code, a.exp_func_code) as exp_func_code,
                coalesce(b.fund_type, a.fund_type) as fund_type,
                coalesce(b.doc_cur, a.doc_cur) as doc_cur,
                coalesce(b.doc_prev, a.doc_prev) as doc_prev,
                coalesce(b.has_carry, a.has_carry) as has_carry,
                case when r_status < 0.03 then '已作废' when r_status < 0.031 then '待审核'
                    when r_status < 0.041 then '支付成功' else '已支付' end as status
            from d
            left join g_active as a on not d.to_unbudgeted and a.pick = d.active_pick
            left join g_unbudgeted as b on d.to_unbudgeted and b.pick = d.unbudgeted_pick
        )
        select
            rank,
            'PV{fy}' || printf('%09d', rank) as pay_cert_no,
            pay_date,
            month(pay_date) as month,
            agency_code,
            agency_name,
            pro_code,
            pro_name,
            case when has_carry and r_carry < 0.30 then doc_prev else doc_cur end as bgt_doc_no,
            case when has_carry and r_carry < 0.006 then '上年结转' end as bgt_source,
            exp_func_code,
            {_pick(ECO_CODES, "h(i, 25) % 1000")} as dep_bgt_eco_code,
            fund_type,
            case when r_pay_type < 0.80 then '国库集中支付' when r_pay_type < 0.95 then '授权支付' else '直接支付' end
                as pay_type,
            {_pick(PLACES, "payee_ix")} || {_pick(BUSINESSES, "payee_ix // 12")} || {_pick(SUFFIXES, "payee_ix // 240")}
                as payee_acct_name,
            {_pick(["6228", "6217", "6222", "4100", "4402", "3302", "1101", "6214"], "payee_ix")}
                || printf('%015d', cast(h(payee_ix, 26) % 1000000000000000 as bigint)) as payee_acct_no,
            cast(cast(case when is_refund then -greatest(fen1 // 20, 100) else fen1 end as decimal(18, 0)) * 0.01
                as decimal(18, 2)) as pay_amt,
            case
                when is_refund then '退回多付款项'
                when r_text < 0.008 then '{fy - 1}年度' || {_pick(USES, "h(i, 27) % 1000")}
                when r_text < 0.013 then '上年' || {_pick(USES, "h(i, 27) % 1000")}
                when r_text < 0.015 then '以前年度' || {_pick(USES, "h(i, 27) % 1000")}
                else cast(month(pay_date) as varchar) || '月' || {_pick(USES, "h(i, 27) % 1000")}
            end as use_des,
            status,
            case when r_contract < 0.005 then 'HT-{fy - 1}-' || printf('%05d', cast(h(i, 28) % 100000 as bigint))
                when r_contract < 0.40 then 'HT-{fy}-' || printf('%05d', cast(h(i, 28) % 100000 as bigint))
            end as contract_no,
            case when is_refund then 'PV{fy}' || printf('%09d', ori_rank) end as ori_pay_cert_no
        from j
        """,
        # the same voucher again in the next month's export (5 % of them with another amount)
        f"""
        create or replace temp table g_rows as
        select *, false as is_reexport from g_vouchers
        union all
        select * from (
            select * replace (
                least(month + 1, 12) as month,
                case when u(rank, 30) < 0.05 then cast(pay_amt + 100 as decimal(18, 2)) else pay_amt end as pay_amt
            ), true as is_reexport
            from g_vouchers
            order by h(rank, 31)
            limit {n_dup}
        )
        """,
        f"""
        insert into raw_payments by name
        select
            2 + month as file_id,
            'payments/payments_{fy}_' || printf('%02d', month) || '.csv' as source_file,
            cast(3 + row_number() over (partition by month order by pay_date, pay_cert_no, is_reexport) as integer)
                as source_row,
            pay_cert_no, pay_date, agency_code, agency_name, pro_code, pro_name, bgt_doc_no, bgt_source,
            exp_func_code, dep_bgt_eco_code, fund_type, pay_type, payee_acct_name, payee_acct_no, pay_amt, use_des,
            status, contract_no, ori_pay_cert_no
        from g_rows
        order by file_id, source_row
        """,
        # refund notices: a later date, part of the amount; 3 % name a voucher that does not exist
        f"""
        insert into raw_refunds by name
        select
            15 as file_id,
            'refunds/refunds_{fy}.xlsx' as source_file,
            cast(2 + row_number() over (order by refund_date, refund_no) as integer) as source_row,
            refund_no, ori_pay_cert_no, refund_date, refund_amt, reason, agency_code
        from (
            select
                'RF{fy}' || printf('%08d', row_number() over (order by v.rank)) as refund_no,
                case when u(v.rank, 40) < 0.03 then 'PV{fy - 1}' || printf('%09d', v.rank) else v.pay_cert_no end
                    as ori_pay_cert_no,
                least(v.pay_date + cast(floor(u(v.rank, 41) * 60) as integer), date '{fy}-12-31') as refund_date,
                cast(greatest(round(v.pay_amt * (0.05 + 0.45 * u(v.rank, 42)), 2), 0.01) as decimal(18, 2))
                    as refund_amt,
                {_pick(["结算退回", "多付退回", "收款账户错误退回"], "v.rank")} as reason,
                v.agency_code
            from g_vouchers as v
            where v.pay_amt > 0
            order by h(v.rank, 43)
            limit {n_refunds}
        )
        order by source_row
        """,
        # budget sheets: amounts from each project's payments (some overspent, some carry-over left)
        f"""
        create or replace temp table g_budget as
        with spend as (
            select
                pro_code,
                sum(pay_amt) filter (where not (bgt_doc_no like '%〔{fy - 1}〕%' or bgt_source is not null)) as cur,
                sum(pay_amt) filter (where bgt_doc_no like '%〔{fy - 1}〕%' or bgt_source is not null) as carry
            from g_vouchers
            where status <> '已作废' and pay_amt > 0
            group by pro_code
        ),
        amounts as (
            select
                p.*,
                cast(ceil(coalesce(s.cur, 100000 + u(p.proj_ix, 50) * 4900000) * (0.85 + 0.6 * u(p.proj_ix, 51))
                    / 10000) * 10000 as decimal(18, 2)) as cur_amt,
                case when p.has_carry then cast(ceil(coalesce(s.carry, 50000 + u(p.proj_ix, 52) * 950000)
                    * (0.9 + 0.5 * u(p.proj_ix, 53)) / 100) * 100 as decimal(18, 2)) else 0 end as carryover_amt,
                case when u(p.proj_ix, 54) < 0.2 then 0.1 * u(p.proj_ix, 55) else 0 end as adj_share,
                u(p.proj_ix, 56) as r_plan
            from g_projects as p
            left join spend as s on p.pro_code = s.pro_code
            where p.budgeted
        )
        select
            *,
            cast(round(cur_amt * adj_share, -4) as decimal(18, 2)) as adj_amt,
            case when r_plan >= 0.05 then cast(round(cur_amt * 0.15, -2) as decimal(18, 2)) end as plan_q1,
            case when r_plan >= 0.05 then cast(round(cur_amt * 0.25, -2) as decimal(18, 2)) end as plan_q2,
            case when r_plan >= 0.05 then cast(round(cur_amt * 0.30, -2) as decimal(18, 2)) end as plan_q3
        from amounts
        """,
        f"""
        insert into raw_budget_lines by name
        select
            file_id,
            source_file,
            cast(2 + row_number() over (partition by file_id order by proj_ix) as integer) as source_row,
            {fy} as fiscal_year,
            agency_code, null as agency_name, pro_code, pro_name, exp_func_code,
            case when has_carry then doc_cur || '；' || doc_prev else doc_cur end as bgt_doc_no,
            cast(cur_amt - adj_amt as decimal(18, 2)) as reply_amt,
            adj_amt,
            cur_amt,
            carryover_amt,
            plan_q1,
            plan_q2,
            plan_q3,
            case when r_plan >= 0.05 then cast(cur_amt - plan_q1 - plan_q2 - plan_q3
                + case when r_plan >= 0.98 then 1000 else 0 end as decimal(18, 2)) end as plan_q4
        from (
            select 1 as file_id, 'budget/budget_{fy}.xlsx' as source_file, * from g_budget
            union all
            select 2, 'budget/budget_{fy}_调整.xlsx', * replace (
                cast(cur_amt + round(cur_amt * 0.1, -4) as decimal(18, 2)) as cur_amt,
                cast(adj_amt + round(cur_amt * 0.1, -4) as decimal(18, 2)) as adj_amt,
                cast(plan_q3 + round(cur_amt * 0.1, -4) as decimal(18, 2)) as plan_q3
            )
            from g_budget
            where u(proj_ix, 57) < 0.10
        )
        order by file_id, source_row
        """,
        # what the loader records per file; the July export's 合计 row is 100.00 off its rows
        f"""
        insert into source_file_log
        select
            file_id,
            file_name,
            '/data/raw/' || file_name as file_path,
            sha256('bench-{seed}-' || file_name) as sha256,
            kind,
            'loaded' as status,
            null as error,
            sheet,
            encoding,
            units,
            fiscal_year,
            n + skipped as rows_read,
            n as rows_valid,
            0 as rows_rejected,
            skipped as rows_skipped,
            case when kind = 'payments' then total + case when file_id = 9 then 100 else 0 end end as control_total,
            total as parsed_total,
            latest_date,
            'bench-generate' as run_id,
            timestamptz '{fy + 1}-01-05 02:00:00+08' + to_minutes(file_id) as loaded_at
        from (
            select file_id, any_value(source_file) as file_name, 'payments' as kind, null as sheet,
                'gb18030' as encoding, 'pay_amt=元' as units, null as fiscal_year, count(*) as n, 4 as skipped,
                sum(pay_amt) as total, max(pay_date) as latest_date
            from raw_payments group by file_id
            union all
            select file_id, any_value(source_file), 'refunds', '退回', null, 'refund_amt=元', null, count(*), 2,
                sum(refund_amt), max(refund_date)
            from raw_refunds group by file_id
            union all
            select file_id, any_value(source_file), 'budget', '预算', null,
                'adj_amt=万元, carryover_amt=万元, cur_amt=万元, plan_q1=万元, plan_q2=万元, plan_q3=万元,'
                || ' plan_q4=万元, reply_amt=万元', {fy}, count(*), 2, sum(cur_amt), null
            from raw_budget_lines group by file_id
        )
        order by file_id
        """,
    ]


def generate(rows: int, seed: int, path: Path) -> None:
    """A new warehouse at path: the real schema (Build -> ensure_schema), raw tables from SQL, published."""
    from flows.warehouse import db

    t = time.perf_counter()
    path.unlink(missing_ok=True)
    build = db.Build(path)
    try:
        with build.transaction() as con:
            for statement in generation_sql(rows, seed):
                con.execute(statement)
            n = con.execute("select count(*) from raw_payments").fetchone()[0]
            assert n == rows, (n, rows)
        for table in ("g_rows", "g_vouchers", "g_draw", "g_active", "g_unbudgeted", "g_projects", "g_units"):
            build.con.execute(f"drop table if exists {table}")
        build.con.execute("drop table if exists g_budget")
        build.publish()
    finally:
        build.abandon()
    print(
        f"generated {path} ({rows:,} payment rows, {path.stat().st_size / 2**20:,.1f} MiB) in "
        f"{time.perf_counter() - t:.1f} s",
        file=sys.stderr,
    )


def ensure_warehouses(data_dir: Path, rows_list: list[int], seed: int) -> dict[int, tuple[Path, bool]]:
    """rows -> (warehouse path, reused). Generated in a separate process (see the module docstring)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for rows in rows_list:
        path = data_dir / f"reconcile_{rows}_seed{seed}.duckdb"
        reused = path.exists()
        if reused:
            print(f"reusing {path} (kept by an earlier --keep run)", file=sys.stderr)
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--generate", str(rows), str(seed), str(path)]
            subprocess.run(cmd, cwd=REPO, check=True)
        out[rows] = (path, reused)
    return out


# --------------------------------------------------------------------------------------------------------------------
# The measuring process
# --------------------------------------------------------------------------------------------------------------------


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads (DuckDB's workers included)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


_start_rss = _maxrss_mib()  # before any heavy import: what the process inherited from its parent, if anything


class TimedConnection:
    """Passes ``execute`` to the DuckDB connection and records (relation, statement kind, seconds) per call."""

    def __init__(self, con):
        self._con = con
        self.calls: list[tuple[str, str, float]] = []
        self._current = "(setup)"

    def _label(self, sql: str, params) -> tuple[str, str]:
        text = " ".join(sql.split()).lower()
        for prefix, kind in (
            ("insert into ", "insert"),
            ("delete from ", "delete"),
            ("select count(*) from ", "count"),
            ("create table ", "create"),
            ("create or replace temp table ", "temp table"),
            ("create temp table ", "temp table"),
            ("alter table ", "alter"),
            ("drop view ", "drop view"),
            ("drop table ", "drop"),
        ):
            if text.startswith(prefix):
                rest = text[len(prefix) :].removeprefix("if not exists ").removeprefix("if exists ")
                self._current = rest.split()[0].split(".")[-1].strip('"')
                return self._current, kind
        if "information_schema" in text or text.startswith("describe"):
            if params:
                self._current = str(params[0])
            return self._current, "schema lookup"
        return self._current, "other"

    def execute(self, sql: str, params=None):
        relation, kind = self._label(sql, params)
        t = time.perf_counter()
        result = self._con.execute(sql, params) if params is not None else self._con.execute(sql)
        self.calls.append((relation, kind, time.perf_counter() - t))
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


def child(path: Path, as_of: dt.date) -> None:
    t = time.perf_counter()
    from flows.warehouse import db
    from flows.warehouse.transform import reconcile

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    build = db.Build(path)  # the private copy + ensure_schema, as a run does before reconcile
    try:
        build_s = time.perf_counter() - t
        rss_before = _maxrss_mib()
        timed = TimedConnection(build.con)
        with build.transaction():
            c0, t0 = _cpu_s(), time.perf_counter()
            counts = reconcile(timed, as_of)
            t1, c1 = time.perf_counter(), _cpu_s()
        t2 = time.perf_counter()
        peak = _maxrss_mib()
        hwm = _proc_status_mib("VmHWM")
        con = build.con
        raw = con.execute("select count(*), count(distinct pay_cert_no) from raw_payments").fetchone()
        counted = con.execute("select count(*) from int_payments").fetchone()[0]
        kinds = dict(
            con.execute(
                "select kind, count(*) from exceptions where as_of = ? group by kind order by kind", [as_of]
            ).fetchall()
        )
        squeeze = dict(
            con.execute(
                "select rule, count(*) from carryover_squeeze where as_of = ? group by rule order by rule", [as_of]
            ).fetchall()
        )
        accounting = con.execute(
            "select count(*) filter (where rows_read <> rows_loaded + rows_duplicate + rows_rejected + rows_skipped)"
            " from source_files"
        ).fetchone()[0]
        threads = con.execute("select current_setting('threads')").fetchone()[0]
    finally:
        build.abandon()
    import duckdb
    import pandas
    import pyarrow

    result = {
        "import_s": import_s,
        "build_s": build_s,
        "reconcile_s": t1 - t0,
        "cpu_s": c1 - c0,
        "commit_s": t2 - t1,
        "counts": counts,
        "statements": timed.calls,
        "peak_rss_mib": peak,
        "rss_before_mib": rss_before,
        "maxrss_at_start_mib": _start_rss,
        "vmhwm_mib": hwm,
        "raw_rows": raw[0],
        "vouchers": raw[1],
        "counted": counted,
        "exception_kinds": kinds,
        "squeeze_rules": squeeze,
        "accounting_errors": accounting,
        "threads": threads,
        "warehouse_mib": path.stat().st_size / 2**20,
        "versions": (
            f"python {platform.python_version()}, duckdb {duckdb.__version__}, "
            f"pandas {pandas.__version__}, pyarrow {pyarrow.__version__}"
        ),
    }
    print("BENCH-RESULT " + json.dumps(result, ensure_ascii=False, default=str))


def profile_child(path: Path, as_of: dt.date, top: int) -> None:
    """Each staging and rule view and each as-of mart body on its own (views inline what they read, so every
    time includes its inputs), and EXPLAIN ANALYZE (json profiling) of the slowest mart body."""
    from flows.warehouse import db

    build = db.Build(path)
    out: dict = {"relations": [], "explain": None}
    try:
        con = build.con
        con.execute("begin transaction")
        con.execute("set variable as_of = cast(? as date)", [as_of])
        con.execute("set variable carryover_due = '06-30'")
        for layer in ("staging", "intermediate", "rules"):
            for name, _body in db.sql_definitions(layer):
                t = time.perf_counter()
                con.execute(f'create or replace temp table "_p_{name}" as select * from "{name}"')
                seconds = time.perf_counter() - t
                n = con.execute(f'select count(*) from "_p_{name}"').fetchone()[0]
                con.execute(f'drop table "_p_{name}"')
                out["relations"].append((layer, name, seconds, n))
        bodies = db.as_of_definitions()
        for name, body in bodies:
            t = time.perf_counter()
            con.execute(f'create or replace temp table "_p_{name}" as select * from (\n{body}\n)')
            seconds = time.perf_counter() - t
            n = con.execute(f'select count(*) from "_p_{name}"').fetchone()[0]
            con.execute(f'drop table "_p_{name}"')
            out["relations"].append(("as-of mart", name, seconds, n))
        slowest = max((r for r in out["relations"] if r[0] == "as-of mart"), key=lambda r: r[2])[1]
        body = dict(bodies)[slowest]
        prof = path.with_name(path.name + ".profile.json")
        con.execute("pragma enable_profiling = 'json'")
        con.execute(f"pragma profiling_output = '{prof}'")
        t = time.perf_counter()
        con.execute(f"select * from (\n{body}\n)").fetchall()
        seconds = time.perf_counter() - t
        con.execute("pragma disable_profiling")
        tree = json.loads(prof.read_text())
        prof.unlink()
        ops: list[tuple[float, str, int, str]] = []

        def walk(node: dict, depth: int) -> None:
            info = node.get("extra_info") or {}
            what = info.get("Table") or info.get("Function") or info.get("Partition By") or info.get("Groups") or ""
            if isinstance(what, list):
                what = ", ".join(map(str, what))
            ops.append((node.get("timing", 0.0), node.get("name", "?"), node.get("intermediate_rows", 0), str(what)))
            for c in node.get("children", []):
                walk(c, depth + 1)

        for root in tree.get("operator", []):
            walk(root, 0)
        ops.sort(reverse=True)
        by_type: dict[str, float] = {}
        for timing, name, _rows, _what in ops:
            by_type[name] = by_type.get(name, 0.0) + timing
        out["explain"] = {
            "relation": slowest,
            "seconds": seconds,
            "operators": len(ops),
            "top": ops[:top],
            "by_type": sorted(by_type.items(), key=lambda kv: -kv[1])[:top],
            "window_ops": sum(1 for o in ops if "WINDOW" in o[1]),
            "scans_raw_payments": sum(1 for o in ops if "SCAN" in o[1] and "raw_payments" in o[3]),
        }
        con.execute("rollback")
    finally:
        build.abandon()
    print("BENCH-PROFILE " + json.dumps(out, ensure_ascii=False, default=str))


def _run_child(args: list[str], marker: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{' '.join(args)} failed (exit {proc.returncode})")
    line = next(x for x in proc.stdout.splitlines() if x.startswith(marker + " "))
    return json.loads(line.removeprefix(marker + " "))


def measure(path: Path, as_of: dt.date) -> dict:
    """One measurement in a fresh process started from this (small) one, on a private copy of the warehouse."""
    return _run_child(["--child", str(path), as_of.isoformat()], "BENCH-RESULT")


# --------------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------------


def _median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["reconcile_s"])[(len(runs) - 1) // 2]


def _verdict(rows: int, seconds: float) -> str:
    if rows != TARGET_ROWS:
        return "n/a (target is for 1,000,000 rows)"
    return "PASS" if seconds < TARGET_SECONDS else f"MISS ({seconds / TARGET_SECONDS:.1f}x the target)"


def report(
    files: dict[int, tuple[Path, bool]], results: dict[int, list[dict]], as_of: dt.date, load: tuple[str, str]
) -> None:
    first = next(iter(results.values()))[0]
    repeat = max(len(v) for v in results.values())
    print()
    print(
        "treasury-recon reconcile benchmark: flows.warehouse.transform.reconcile(con, as_of) in a db.Build transaction"
    )
    print(f"command : {shlex.join([sys.executable, *sys.argv])}")
    print(f"commit  : {_commit()}")
    print(f"nproc   : {_nproc()}    duckdb threads: {first['threads']}    platform: {platform.platform()}")
    print(f"versions: {first['versions']}")
    print(f"load    : 1-min load average {load[0]} before the measurements, {load[1]} after (other processes count)")
    print(
        f"method  : as_of {as_of}; {repeat} fresh process(es) per warehouse, each on its own Build copy; seconds = "
        "reconcile() of the median run (commit apart), CPU s = its user+system time (all threads); peak RSS = max "
        "ru_maxrss over the runs; MiB = 2**20 bytes"
    )
    print(f"target  : {TARGET_ROWS:,} payment rows reconciled < {TARGET_SECONDS:g} s")
    print()
    marts = list(first["counts"])
    head = (
        f"{'rows':>11} {'DB MiB':>7} {'reconcile s':>11} {'(min-max)':>13} {'CPU s':>6} {'commit s':>8} {'rows/s':>9} "
        f"{'peak RSS MiB':>12}  " + " ".join(f"{m:>{max(len(m), 8)}}" for m in marts) + "  result"
    )
    print(head)
    print("-" * len(head))
    for rows, runs in results.items():
        r = _median_run(runs)
        times = [x["reconcile_s"] for x in runs]
        peak = max(x["peak_rss_mib"] for x in runs)
        print(
            f"{rows:>11,} {r['warehouse_mib']:>7,.0f} {r['reconcile_s']:>11.2f} "
            f"{f'{min(times):.2f}-{max(times):.2f}':>13} {r['cpu_s']:>6.1f} {r['commit_s']:>8.2f} "
            f"{rows / r['reconcile_s']:>9,.0f} "
            f"{peak:>12,.0f}  "
            + " ".join(f"{r['counts'].get(m, 0):>{max(len(m), 8)},}" for m in marts)
            + f"  {_verdict(rows, r['reconcile_s'])}"
        )
    print()
    for rows, runs in results.items():
        r = _median_run(runs)
        print(
            f"{rows:,} rows: {r['vouchers']:,} vouchers, {r['counted']:,} counted payments (int_payments); "
            f"source_files accounting errors: {r['accounting_errors']}; exceptions by kind: "
            + ", ".join(f"{k} {v:,}" for k, v in r["exception_kinds"].items())
            + "; carryover_squeeze by rule: "
            + ", ".join(f"{k} {v:,}" for k, v in r["squeeze_rules"].items())
        )
        print(
            f"    memory: ru_maxrss at process start {r['maxrss_at_start_mib']:,.0f} MiB, before reconcile "
            f"{r['rss_before_mib']:,.0f} MiB, peak {r['peak_rss_mib']:,.0f} MiB (VmHWM {r['vmhwm_mib']:,.0f} MiB); "
            f"not counted: imports {r['import_s']:.2f} s, Build (copy + ensure_schema) {r['build_s']:.2f} s; "
            f"all runs: " + ", ".join(f"{x['reconcile_s']:.2f}" for x in runs) + " s"
        )
    print()
    print("per statement of reconcile(), median run (seconds; timing wrapper around con.execute)")
    for rows, runs in results.items():
        r = _median_run(runs)
        per: dict[str, dict[str, float]] = {}
        for relation, kind, seconds in r["statements"]:
            per.setdefault(relation, {}).setdefault(kind, 0.0)
            per[relation][kind] += seconds
        total = sum(s for *_, s in r["statements"])
        print(f"  {rows:,} rows (sum of statements {total:.2f} s of {r['reconcile_s']:.2f} s)")
        for relation, kinds in per.items():
            detail = ", ".join(f"{k} {v:.3f}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
            share = sum(kinds.values()) / r["reconcile_s"] * 100
            print(f"    {relation:<24} {sum(kinds.values()):>7.2f} s {share:>5.1f} %   ({detail})")


def report_profile(rows: int, prof: dict) -> None:
    print()
    print(f"--profile, {rows:,} rows: each relation materialised alone (create temp table as select *), as_of set")
    for layer, name, seconds, n in prof["relations"]:
        print(f"    {layer:<11} {name:<32} {seconds:>7.2f} s {n:>11,} rows")
    ex = prof["explain"]
    print()
    print(
        f"EXPLAIN ANALYZE (json profiling) of the slowest mart body, {ex['relation']}: {ex['seconds']:.2f} s, "
        f"{ex['operators']} operators, {ex['window_ops']} window operators, {ex['scans_raw_payments']} scans of "
        "raw_payments"
    )
    print("    by operator type: " + ", ".join(f"{k} {v:.2f} s" for k, v in ex["by_type"]))
    for timing, name, n, what in ex["top"]:
        print(f"    {timing:>7.3f} s  {name:<26} {n:>11,} rows  {what[:70]}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000], help="payment rows per warehouse (several ok)")
    p.add_argument("--seed", type=int, default=20250101)
    p.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(FISCAL_YEAR, 12, 31), help="as-of date")
    p.add_argument("--dir", type=Path, default=REPO / "bench" / "data", help="where the warehouses go")
    p.add_argument("--keep", action="store_true", help="keep the generated warehouses (reused by the next run)")
    p.add_argument("--repeat", type=int, default=3, help="fresh processes per warehouse; the median run is reported")
    p.add_argument("--profile", action="store_true", help="also time each view alone and EXPLAIN ANALYZE (1st size)")
    p.add_argument("--child", nargs=2, metavar=("WAREHOUSE", "AS_OF"), help=argparse.SUPPRESS)
    p.add_argument("--profile-child", nargs=2, metavar=("WAREHOUSE", "AS_OF"), help=argparse.SUPPRESS)
    p.add_argument("--generate", nargs=3, metavar=("ROWS", "SEED", "FILE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.generate:
        rows, seed, file = args.generate
        generate(int(rows), int(seed), Path(file))
        return
    if args.child:
        child(Path(args.child[0]), dt.date.fromisoformat(args.child[1]))
        return
    if args.profile_child:
        profile_child(Path(args.profile_child[0]), dt.date.fromisoformat(args.profile_child[1]), top=15)
        return

    data_dir = args.dir.resolve()
    files = ensure_warehouses(data_dir, args.rows, args.seed)
    load_before = f"{os.getloadavg()[0]:.2f}"
    try:
        results: dict[int, list[dict]] = {}
        for rows, (path, _) in files.items():
            for i in range(args.repeat):
                print(f"measuring {path.name} ({i + 1}/{args.repeat}) ...", file=sys.stderr)
                results.setdefault(rows, []).append(measure(path, args.as_of))
        load = (load_before, f"{os.getloadavg()[0]:.2f}")
        report(files, results, args.as_of, load)
        if args.profile:
            rows, (path, _) = next(iter(files.items()))
            print(f"profiling {path.name} ...", file=sys.stderr)
            prof = _run_child(["--profile-child", str(path), args.as_of.isoformat()], "BENCH-PROFILE")
            report_profile(rows, prof)
    finally:
        if not args.keep:
            for path, _ in files.values():
                for leftover in (path, path.with_name(path.name + ".wal"), path.with_name(path.name + ".lock")):
                    leftover.unlink(missing_ok=True)
            if data_dir.exists() and not any(data_dir.iterdir()):
                data_dir.rmdir()


if __name__ == "__main__":
    main()
