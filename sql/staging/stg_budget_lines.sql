-- stg_budget_lines: every loaded budget-sheet row, dated (CONTRACT.md 1.3): effective_date is the sheet's (a
-- 调整日期/批复日期/下达日期 column or title marker, set at ingest), else January 1 of its fiscal year.
-- Kind: view
-- Grain: one row per raw_budget_lines row.
-- Reads: raw_budget_lines.
select
    * exclude (effective_date),
    coalesce(effective_date, make_date(fiscal_year, 1, 1)) as effective_date
from raw_budget_lines
