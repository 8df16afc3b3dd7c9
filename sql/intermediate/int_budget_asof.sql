-- int_budget_asof: the project budgets in force at the as-of date (CONTRACT.md 1.3): per project, the latest version
-- effective on or before as_of. Same columns as budget_lines; every as-of mart and rule reads this, not budget_lines.
-- A project none of whose versions is effective yet at as_of has no budget as of that date.
-- Kind: view
-- Grain: one row per fiscal_year, agency_code, pro_code with a version in force at as_of.
-- Reads: int_budget_versions, stg_params.
select
    b.fiscal_year,
    b.agency_code,
    b.agency_name,
    b.pro_code,
    b.pro_name,
    b.exp_func_code,
    b.bgt_doc_no,
    b.orig_reply_amt as reply_amt,
    cast(b.cur_amt - b.orig_reply_amt as decimal(18, 2)) as adj_amt,
    b.cur_amt,
    b.carryover_amt,
    b.plan_q1,
    b.plan_q2,
    b.plan_q3,
    b.plan_q4,
    b.source_file,
    b.source_row,
    b.effective_date,
    b.version_no
from int_budget_versions as b
cross join stg_params as p
where
    b.is_version
    and b.effective_date <= p.as_of
    and (b.valid_until is null or b.valid_until > p.as_of)
