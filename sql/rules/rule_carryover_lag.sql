-- rule_carryover_lag: on or after the carry-over due date (default 06-30 of the fiscal year), carry-over money
-- paid by the as-of date is less than carryover_amt. amount is the outstanding carry-over at the as-of date.
-- Kind: view
-- Grain: one row per budget line with carry-over money outstanding.
-- Reads: int_project_spend, stg_params, int_budget_asof.
select
    s.fiscal_year,
    s.agency_code,
    s.pro_code,
    cast(null as varchar) as pay_cert_no,
    cast(s.carryover_amt - s.paid_carryover as decimal(18, 2)) as amount,
    '项目 ' || s.pro_code || ' 上年结转 ' || s.carryover_amt || ' 元，截至 ' || p.as_of || ' 已支付 '
    || s.paid_carryover || ' 元，尚有 ' || cast(s.carryover_amt - s.paid_carryover as decimal(18, 2))
    || ' 元未支付（应于 ' || s.fiscal_year || '-' || p.carryover_due || ' 前支付）' as detail,
    b.source_file,
    b.source_row
from int_project_spend as s
cross join stg_params as p
inner join int_budget_asof as b
    on s.fiscal_year = b.fiscal_year and s.agency_code = b.agency_code and s.pro_code = b.pro_code
where
    s.carryover_amt > 0
    and s.paid_carryover < s.carryover_amt
    and p.as_of >= cast(s.fiscal_year || '-' || p.carryover_due as date)
