-- execution_by_project: budget execution per project as of the as-of date (CONTRACT.md section 3).
-- Kind: per_as_of (a rerun for the same date replaces that date's rows).
-- Grain: one row per fiscal_year, agency_code, pro_code with a budget line, for fiscal years up to the as-of year.
-- Reads: int_project_spend, stg_params, rule_carryover_squeeze.
-- execution_rate = current-year payments (net of refunds dated <= as_of) / cur_amt; total_execution_rate also
-- counts carry-over money. Rates are exact fractions (12 decimals); *_pct are percent, one decimal, half-up.
with squeeze as (
    select
        fiscal_year,
        agency_code,
        pro_code,
        sum(amount) as squeeze_amt,
        count(*) as squeeze_count
    from rule_carryover_squeeze
    group by fiscal_year, agency_code, pro_code
)

select
    s.fiscal_year,
    p.as_of,
    s.agency_code,
    s.pro_code,
    s.pro_name,
    s.cur_amt,
    s.paid_current,
    rate_fraction(s.paid_current, s.cur_amt) as execution_rate,
    rate_pct(s.paid_current, s.cur_amt) as execution_rate_pct,
    s.carryover_amt,
    s.paid_carryover,
    rate_fraction(s.paid_current + s.paid_carryover, s.cur_amt + s.carryover_amt) as total_execution_rate,
    rate_pct(s.paid_current + s.paid_carryover, s.cur_amt + s.carryover_amt) as total_execution_rate_pct,
    cast(coalesce(q.squeeze_amt, 0) as decimal(18, 2)) as squeeze_amt,
    coalesce(q.squeeze_count, 0) as squeeze_count,
    cast(s.cur_amt - s.paid_current as decimal(18, 2)) as balance_current,
    cast(s.carryover_amt - s.paid_carryover as decimal(18, 2)) as balance_carryover,
    s.reply_amt,
    s.adj_amt,
    cast(s.cur_amt + s.carryover_amt as decimal(18, 2)) as total_amt,
    cast(s.paid_current + s.paid_carryover as decimal(18, 2)) as paid_total
from int_project_spend as s
cross join stg_params as p
left join squeeze as q
    on s.fiscal_year = q.fiscal_year and s.agency_code = q.agency_code and s.pro_code = q.pro_code
where s.is_budgeted and s.fiscal_year <= year(p.as_of)
