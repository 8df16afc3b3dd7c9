-- rule_plan_sum_mismatch: a budget line in force at the as-of date whose quarterly plan does not add up to its
-- 全年预算数 (cur_amt).
-- Kind: view
-- Grain: one row per budget line with a plan.
-- Reads: int_budget_asof.
select
    fiscal_year,
    agency_code,
    pro_code,
    cast(null as varchar) as pay_cert_no,
    cast(
        coalesce(plan_q1, 0) + coalesce(plan_q2, 0) + coalesce(plan_q3, 0) + coalesce(plan_q4, 0) - cur_amt
        as decimal(18, 2)
    ) as amount,
    '项目 ' || pro_code || ' 分季度计划合计 '
    || cast(coalesce(plan_q1, 0) + coalesce(plan_q2, 0) + coalesce(plan_q3, 0) + coalesce(plan_q4, 0) as decimal(18, 2))
    || ' 元 ≠ 全年预算数 ' || cur_amt || ' 元' as detail,
    source_file,
    source_row
from int_budget_asof
where
    coalesce(plan_q1, plan_q2, plan_q3, plan_q4) is not null
    and coalesce(plan_q1, 0) + coalesce(plan_q2, 0) + coalesce(plan_q3, 0) + coalesce(plan_q4, 0) <> cur_amt
