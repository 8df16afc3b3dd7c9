-- noqa: disable=RF04
-- behind_plan: how far each project is behind its quarterly plan at the latest completed quarter (CONTRACT.md 2),
-- and, when the elapsed-time baseline is configured, projects without a plan against 序时进度
-- (cur_amt × whole months elapsed / 12), for every as-of date reconciled.
-- gap_pp = (target_amt - paid_cum) / cur_amt × 100, stored half-up to two decimals; severity is judged on the exact
-- amounts ((target_amt - paid_cum) × 100 >= threshold × cur_amt): critical, warning, or NULL (not behind, or cur_amt
-- 0). The thresholds are the session's (the config's [alerts]: the alerts step and publish set them), else the
-- defaults 5 / 15; the elapsed baseline rows appear only when elapsed_baseline is set true.
-- Kind: view
-- Grain: one row per budgeted project and as-of date with a completed quarter and a plan (basis quarter_plan), or
-- without a plan when the elapsed baseline is on (basis elapsed).
-- Reads: execution_by_quarter, execution_by_project.
-- Variables: behind_warning_pp, behind_critical_pp (percentage points), elapsed_baseline (boolean).
with params as (
    select
        coalesce(cast(getvariable('behind_warning_pp') as decimal(9, 4)), 5) as warning_pp,
        coalesce(cast(getvariable('behind_critical_pp') as decimal(9, 4)), 15) as critical_pp,
        coalesce(cast(getvariable('elapsed_baseline') as boolean), false) as elapsed_baseline
),

quarters as (
    select
        *,
        bool_or(plan_amt is not null) over project as has_plan,
        max(quarter) filter (where is_complete) over project as latest_quarter
    from execution_by_quarter
    window project as (partition by fiscal_year, as_of, agency_code, pro_code)
),

planned as (
    select
        fiscal_year,
        as_of,
        agency_code,
        pro_code,
        pro_name,
        'quarter_plan' as basis,
        quarter,
        '第' || quarter || '季度末累计计划' as target_label,
        cur_amt,
        plan_cum as target_amt,
        paid_cum
    from quarters
    where has_plan and quarter = latest_quarter
),

unplanned as (
    select distinct
        fiscal_year,
        as_of,
        agency_code,
        pro_code
    from quarters
    where not has_plan
),

elapsed as (
    select
        e.fiscal_year,
        e.as_of,
        e.agency_code,
        e.pro_code,
        e.pro_name,
        'elapsed' as basis,
        cast(null as bigint) as quarter,
        '序时进度' as target_label,
        e.cur_amt,
        cast(
            e.cur_amt * case
                when e.fiscal_year < year(e.as_of) then 12
                when e.as_of = last_day(e.as_of) then month(e.as_of)
                else month(e.as_of) - 1
            end / 12 as decimal(18, 2)
        ) as target_amt,
        e.paid_current as paid_cum
    from execution_by_project as e
    inner join unplanned as u
        on
            e.fiscal_year = u.fiscal_year
            and e.as_of = u.as_of
            and e.agency_code = u.agency_code
            and e.pro_code = u.pro_code
    cross join params as p
    where p.elapsed_baseline
),

gaps as (
    select * from planned
    union all
    select * from elapsed
)

select
    g.*,
    cast(g.target_amt - g.paid_cum as decimal(18, 2)) as gap_amt,
    pp2(g.target_amt - g.paid_cum, g.cur_amt) as gap_pp,
    p.warning_pp,
    p.critical_pp,
    case
        when g.cur_amt > 0 and (g.target_amt - g.paid_cum) * 100 >= p.critical_pp * g.cur_amt then 'critical'
        when g.cur_amt > 0 and (g.target_amt - g.paid_cum) * 100 >= p.warning_pp * g.cur_amt then 'warning'
    end as severity
from gaps as g
cross join params as p
