-- self_assessment_funds: the money block of the 项目支出绩效自评表 (财预〔2020〕10号) per unit and per project, as of
-- the as-of date, in yuan: 年度资金总额 = 其中：当年财政拨款 + 上年结转资金 + 其他资金 (0: the treasury has no other
-- funds). 年初预算数 is reply_amt for current-year money and carryover_amt for carry-over money; 全年预算数 cur_amt
-- and carryover_amt; 全年执行数 what was paid. 执行率 = 全年执行数 / 全年预算数 (rate exact, rate_pct one decimal,
-- half-up). 分值 (weight, the config's [publish] weight, default 10) and 得分 = 分值 × 执行率 within [0, 分值],
-- half-up to 0.01 (bounded_score), are on the 年度资金总额 row only. Unbudgeted spending is not the unit's budget.
-- Kind: per_as_of (a rerun for the same date replaces that date's rows).
-- Grain: one row per scope (the unit, or one of its budgeted projects), fiscal year, as-of date and funds row (1-4).
-- Reads: execution_by_unit, execution_by_project, stg_params.
-- Variables: weight (the 分值; default 10).
with scopes as (
    select
        fiscal_year,
        agency_code,
        'unit' as scope_kind,
        '单位' as scope_zh,
        agency_code as scope_code,
        coalesce(agency_name, agency_code) as scope_name,
        coalesce(reply_amt, 0) as reply_amt,
        coalesce(cur_amt, 0) as cur_amt,
        coalesce(carryover_amt, 0) as carryover_amt,
        coalesce(paid_current, 0) as paid_current,
        coalesce(paid_carryover, 0) as paid_carryover
    from execution_by_unit
    where as_of = (select sp.as_of from stg_params as sp)
    union all
    select
        fiscal_year,
        agency_code,
        'project' as scope_kind,
        '项目' as scope_zh,
        pro_code as scope_code,
        pro_name as scope_name,
        coalesce(reply_amt, 0) as reply_amt,
        coalesce(cur_amt, 0) as cur_amt,
        coalesce(carryover_amt, 0) as carryover_amt,
        coalesce(paid_current, 0) as paid_current,
        coalesce(paid_carryover, 0) as paid_carryover
    from execution_by_project
    where as_of = (select sp.as_of from stg_params as sp)
),

funds as (
    -- each row takes current-year money (with_current) and carry-over money (with_carryover), or neither
    select
        s.*,
        r.row_no,
        r.funds,
        s.reply_amt * r.with_current + s.carryover_amt * r.with_carryover as initial_amt,
        s.cur_amt * r.with_current + s.carryover_amt * r.with_carryover as budget_amt,
        s.paid_current * r.with_current + s.paid_carryover * r.with_carryover as paid_amt
    from scopes as s
    cross join (
        values (1, '年度资金总额', 1, 1), (2, '其中：当年财政拨款', 1, 0), (3, '上年结转资金', 0, 1), (4, '其他资金', 0, 0)
    ) as r (row_no, funds, with_current, with_carryover)
),

weights as (
    select coalesce(cast(getvariable('weight') as decimal(9, 4)), 10) as weight
)

select
    f.fiscal_year,
    p.as_of,
    f.agency_code,
    f.scope_kind,
    f.scope_zh,
    f.scope_code,
    f.scope_name,
    f.row_no,
    f.funds,
    f.row_no = 1 as is_total,
    cast(f.initial_amt as decimal(18, 2)) as initial_amt,
    cast(f.budget_amt as decimal(18, 2)) as budget_amt,
    cast(f.paid_amt as decimal(18, 2)) as paid_amt,
    case when f.row_no = 1 then w.weight end as weight,
    rate_fraction(f.paid_amt, f.budget_amt) as rate,
    rate_pct(f.paid_amt, f.budget_amt) as rate_pct,
    case when f.row_no = 1 then bounded_score(w.weight, f.paid_amt, f.budget_amt) end as score
from funds as f
cross join stg_params as p
cross join weights as w
