-- noqa: disable=RF04
-- alert_candidates: the alerts that hold at the as-of date (CONTRACT.md section 2 and 3).
-- Built by the alerts step (flows/alerts.py) as a temp table, after the session variables are set.
-- Kind: step
-- Grain: one row per alert_key: behind_plan per project, carryover_lag per project, carryover_squeeze per voucher,
-- exception per fatal finding.
-- Reads: execution_by_quarter, exceptions, int_budget_asof, int_project_spend.
-- Variables: as_of, behind_warning_pp, behind_critical_pp, elapsed_baseline.
-- behind_plan: q = quarters ending on or before the as-of date; gap_pp = (plan_cum - paid_cum) / cur_amt * 100,
-- judged on the exact value (no division: plan_cum - paid_cum >= threshold / 100 * cur_amt). Projects with no plan
-- are judged against the elapsed-time baseline (cur_amt * whole months elapsed / 12) only when it is configured.
with params as (
    select
        cast(getvariable('as_of') as date) as as_of,
        cast(getvariable('behind_warning_pp') as decimal(9, 4)) as warning_pp,
        cast(getvariable('behind_critical_pp') as decimal(9, 4)) as critical_pp,
        coalesce(cast(getvariable('elapsed_baseline') as boolean), false) as elapsed_baseline
),

latest_quarter as (
    select
        q.*,
        row_number() over (partition by q.fiscal_year, q.agency_code, q.pro_code order by q.quarter desc) as pick
    from execution_by_quarter as q
    inner join params as p on q.as_of = p.as_of
    where q.is_complete
),

planned as (
    select
        q.fiscal_year,
        q.agency_code,
        q.pro_code,
        q.pro_name,
        q.cur_amt,
        q.quarter,
        q.plan_cum as target_amt,
        q.paid_cum,
        '第' || q.quarter || '季度末累计计划' as target_label
    from latest_quarter as q
    inner join int_budget_asof as b
        on q.fiscal_year = b.fiscal_year and q.agency_code = b.agency_code and q.pro_code = b.pro_code
    where q.pick = 1 and coalesce(b.plan_q1, b.plan_q2, b.plan_q3, b.plan_q4) is not null
),

elapsed as (
    select
        b.fiscal_year,
        b.agency_code,
        b.pro_code,
        b.pro_name,
        b.cur_amt,
        null as quarter,
        cast(
            b.cur_amt * case
                when b.fiscal_year < year(p.as_of) then 12
                when p.as_of = last_day(p.as_of) then month(p.as_of)
                else month(p.as_of) - 1
            end / 12 as decimal(18, 2)
        ) as target_amt,
        s.paid_current as paid_cum,
        '序时进度' as target_label
    from int_budget_asof as b
    cross join params as p
    inner join int_project_spend as s
        on b.fiscal_year = s.fiscal_year and b.agency_code = s.agency_code and b.pro_code = s.pro_code
    where
        p.elapsed_baseline
        and b.fiscal_year <= year(p.as_of)
        and coalesce(b.plan_q1, b.plan_q2, b.plan_q3, b.plan_q4) is null
),

gaps as (
    select * from planned
    union all
    select * from elapsed
),

behind_plan as (
    select
        'behind_plan' as kind,
        case
            when (g.target_amt - g.paid_cum) * 100 >= p.critical_pp * g.cur_amt then 'critical'
            else 'warning'
        end as severity,
        g.fiscal_year,
        g.agency_code,
        g.pro_code,
        null as pay_cert_no,
        pp2(g.target_amt - g.paid_cum, g.cur_amt) as gap_pp,
        cast(g.target_amt - g.paid_cum as decimal(18, 2)) as amount,
        g.pro_name || '（' || g.pro_code || '）' || g.target_label || ' '
        || cast(g.target_amt as decimal(18, 2)) || ' 元，实际支出 ' || g.paid_cum || ' 元，落后 '
        || pp2(g.target_amt - g.paid_cum, g.cur_amt) || ' 个百分点' as detail
    from gaps as g
    cross join params as p
    where g.cur_amt > 0 and (g.target_amt - g.paid_cum) * 100 >= p.warning_pp * g.cur_amt
),

from_exceptions as (
    select
        case
            when e.kind in ('carryover_lag', 'carryover_squeeze') then e.kind
            else 'exception'
        end as kind,
        case when e.kind in ('carryover_lag', 'carryover_squeeze') then 'warning' else e.severity end as severity,
        e.fiscal_year,
        e.agency_code,
        e.pro_code,
        case
            when e.kind = 'carryover_squeeze' then e.pay_cert_no
            when e.kind not in ('carryover_lag', 'carryover_squeeze')
                then e.kind || ':' || coalesce(e.pay_cert_no, e.source_file || '#' || coalesce(e.source_row, 0), '')
        end as pay_cert_no,
        null as gap_pp,
        e.amount,
        e.detail
    from exceptions as e
    cross join params as p
    where
        e.as_of = p.as_of
        and (e.kind in ('carryover_lag', 'carryover_squeeze') or e.severity = 'fatal')
)

select
    *,
    concat_ws('|', kind, fiscal_year, agency_code, pro_code, pay_cert_no) as alert_key
from (
    select * from behind_plan
    union all
    select * from from_exceptions
) as a
