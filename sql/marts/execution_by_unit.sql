-- execution_by_unit: budget execution per budget unit as of the as-of date (CONTRACT.md section 3).
-- Kind: per_as_of (a rerun for the same date replaces that date's rows).
-- Grain: one row per fiscal_year, agency_code with a budget line or a payment, up to the as-of year.
-- Reads: int_project_spend, stg_params, int_budget_asof, int_payments, rule_carryover_squeeze.
-- Unbudgeted payments are not in paid_current: they have their own column, unbudgeted_amt (both money kinds).
with names as (
    select
        agency_code,
        max(agency_name) as agency_name
    from (
        select
            agency_code,
            agency_name
        from int_budget_asof
        union all
        select
            agency_code,
            agency_name
        from int_payments
    ) as named
    group by agency_code
),

squeeze as (
    select
        fiscal_year,
        agency_code,
        sum(amount) as squeeze_amt,
        count(*) as squeeze_count
    from rule_carryover_squeeze
    group by fiscal_year, agency_code
),

units as (
    select
        fiscal_year,
        agency_code,
        sum(reply_amt) filter (where is_budgeted) as reply_amt,
        sum(cur_amt) filter (where is_budgeted) as cur_amt,
        sum(paid_current) filter (where is_budgeted) as paid_current,
        sum(carryover_amt) filter (where is_budgeted) as carryover_amt,
        sum(paid_carryover) filter (where is_budgeted) as paid_carryover,
        sum(paid_current + paid_carryover) filter (where not is_budgeted) as unbudgeted_amt,
        count(*) filter (where is_budgeted) as project_count
    from int_project_spend
    group by fiscal_year, agency_code
)

select
    u.fiscal_year,
    p.as_of,
    u.agency_code,
    n.agency_name,
    cast(coalesce(u.cur_amt, 0) as decimal(18, 2)) as cur_amt,
    cast(coalesce(u.paid_current, 0) as decimal(18, 2)) as paid_current,
    rate_fraction(coalesce(u.paid_current, 0), u.cur_amt) as execution_rate,
    rate_pct(coalesce(u.paid_current, 0), u.cur_amt) as execution_rate_pct,
    cast(coalesce(u.carryover_amt, 0) as decimal(18, 2)) as carryover_amt,
    cast(coalesce(u.paid_carryover, 0) as decimal(18, 2)) as paid_carryover,
    rate_fraction(
        coalesce(u.paid_current, 0) + coalesce(u.paid_carryover, 0),
        coalesce(u.cur_amt, 0) + coalesce(u.carryover_amt, 0)
    ) as total_execution_rate,
    rate_pct(
        coalesce(u.paid_current, 0) + coalesce(u.paid_carryover, 0),
        coalesce(u.cur_amt, 0) + coalesce(u.carryover_amt, 0)
    ) as total_execution_rate_pct,
    cast(coalesce(u.unbudgeted_amt, 0) as decimal(18, 2)) as unbudgeted_amt,
    u.project_count,
    cast(coalesce(u.reply_amt, 0) as decimal(18, 2)) as reply_amt,
    cast(coalesce(q.squeeze_amt, 0) as decimal(18, 2)) as squeeze_amt,
    coalesce(q.squeeze_count, 0) as squeeze_count,
    cast(coalesce(u.cur_amt, 0) + coalesce(u.carryover_amt, 0) as decimal(18, 2)) as total_amt,
    cast(coalesce(u.paid_current, 0) + coalesce(u.paid_carryover, 0) as decimal(18, 2)) as paid_total
from units as u
cross join stg_params as p
left join names as n on u.agency_code = n.agency_code
left join squeeze as q on u.fiscal_year = q.fiscal_year and u.agency_code = q.agency_code
where u.fiscal_year <= year(p.as_of)
