-- noqa: disable=RF04
-- execution_by_quarter: plan against current-year payments per project and quarter, as of the as-of date.
-- Kind: per_as_of (a rerun for the same date replaces that date's rows).
-- Grain: one row per budgeted project and quarter (1-4), fiscal years up to the as-of year.
-- Reads: int_budget_asof, int_spend_asof, stg_params.
-- A refund counts in the quarter of its refund date. gap_pp = (plan_cum - paid_cum) / cur_amt * 100, half-up to
-- two decimals, NULL for quarters that end after the as-of date or when cur_amt is 0.
with q as (select unnest(range(1, 5)) as quarter),

quarters as (
    select
        b.fiscal_year,
        b.agency_code,
        b.pro_code,
        b.pro_name,
        b.cur_amt,
        q.quarter,
        case q.quarter when 1 then b.plan_q1 when 2 then b.plan_q2 when 3 then b.plan_q3 else b.plan_q4 end
            as plan_amt,
        last_day(make_date(b.fiscal_year, q.quarter * 3, 1)) as quarter_end
    from int_budget_asof as b
    cross join q
),

paid as (
    select
        fiscal_year,
        agency_code,
        pro_code,
        -- a refund dated after its year (in January) counts in the year's last quarter
        case when year(event_date) > fiscal_year then 4 else quarter(event_date) end as quarter,
        sum(amount) as paid_amt
    from int_spend_asof
    where money = 'current'
    group by
        fiscal_year, agency_code, pro_code, case when year(event_date) > fiscal_year then 4 else quarter(event_date) end
),

cumulative as (
    select
        q.*,
        cast(coalesce(pd.paid_amt, 0) as decimal(18, 2)) as paid_amt,
        cast(sum(coalesce(q.plan_amt, 0)) over project_quarters as decimal(18, 2)) as plan_cum,
        cast(sum(coalesce(pd.paid_amt, 0)) over project_quarters as decimal(18, 2)) as paid_cum
    from quarters as q
    left join paid as pd
        on
            q.fiscal_year = pd.fiscal_year
            and q.agency_code = pd.agency_code
            and q.pro_code = pd.pro_code
            and q.quarter = pd.quarter
    window project_quarters as (
        partition by q.fiscal_year, q.agency_code, q.pro_code
        order by q.quarter
        rows between unbounded preceding and current row
    )
)

select
    c.fiscal_year,
    p.as_of,
    c.agency_code,
    c.pro_code,
    c.pro_name,
    c.quarter,
    c.quarter_end,
    c.quarter_end <= p.as_of as is_complete,
    c.cur_amt,
    c.plan_amt,
    c.plan_cum,
    c.paid_amt,
    c.paid_cum,
    case when c.quarter_end <= p.as_of then pp2(c.plan_cum - c.paid_cum, c.cur_amt) end as gap_pp,
    rate_pct(c.plan_cum, c.cur_amt) as plan_cum_pct,
    rate_pct(c.paid_cum, c.cur_amt) as paid_cum_pct
from cumulative as c
cross join stg_params as p
where c.fiscal_year <= year(p.as_of)
