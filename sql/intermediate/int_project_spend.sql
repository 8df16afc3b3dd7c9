-- int_project_spend: spending per project as of the as-of date, current-year and carry-over money apart,
-- next to the project's budget line in force at the as-of date (NULL budget columns: an unbudgeted project).
-- Kind: view
-- Grain: one row per fiscal_year, agency_code, pro_code that has a budget line or spending.
-- Reads: int_spend_asof, int_budget_asof.
with spend as (
    select
        fiscal_year,
        agency_code,
        pro_code,
        sum(amount) filter (where money = 'current') as paid_current,
        sum(amount) filter (where money = 'carryover') as paid_carryover
    from int_spend_asof
    group by fiscal_year, agency_code, pro_code
)

select
    coalesce(b.fiscal_year, s.fiscal_year) as fiscal_year,
    coalesce(b.agency_code, s.agency_code) as agency_code,
    coalesce(b.pro_code, s.pro_code) as pro_code,
    b.pro_name,
    b.reply_amt,
    b.adj_amt,
    b.cur_amt,
    b.carryover_amt,
    b.pro_code is not null as is_budgeted,
    cast(coalesce(s.paid_current, 0) as decimal(18, 2)) as paid_current,
    cast(coalesce(s.paid_carryover, 0) as decimal(18, 2)) as paid_carryover
from int_budget_asof as b
full outer join spend as s
    on b.fiscal_year = s.fiscal_year and b.agency_code = s.agency_code and b.pro_code = s.pro_code
