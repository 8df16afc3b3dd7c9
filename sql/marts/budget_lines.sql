-- budget_lines: the project budgets in force (CONTRACT.md section 3), amounts in yuan.
-- Grain: one row per fiscal_year, agency_code, pro_code (the latest loaded budget sheet wins).
-- Reads: stg_budget_lines.
select
    fiscal_year,
    agency_code,
    agency_name,
    pro_code,
    pro_name,
    exp_func_code,
    bgt_doc_no,
    reply_amt,
    adj_amt,
    cur_amt,
    carryover_amt,
    plan_q1,
    plan_q2,
    plan_q3,
    plan_q4,
    source_file,
    source_row
from stg_budget_lines
where version_rank = 1
