-- budget_lines: the project budgets (CONTRACT.md section 3), amounts in yuan: per project its latest version
-- (CONTRACT.md 1.3), the one in force from effective_date on. The marts use the version in force at their as-of
-- date (int_budget_asof). reply_amt (年初预算数) is the earliest version's; adj_amt = cur_amt - reply_amt.
-- Kind: view
-- Grain: one row per fiscal_year, agency_code, pro_code.
-- Reads: int_budget_versions.
select
    fiscal_year,
    agency_code,
    agency_name,
    pro_code,
    pro_name,
    exp_func_code,
    bgt_doc_no,
    orig_reply_amt as reply_amt,
    cast(cur_amt - orig_reply_amt as decimal(18, 2)) as adj_amt,
    cur_amt,
    carryover_amt,
    plan_q1,
    plan_q2,
    plan_q3,
    plan_q4,
    source_file,
    source_row,
    effective_date,
    version_no as version_count
from int_budget_versions
where version_rank = 1
