-- stg_budget_lines: budget sheet rows ranked per project; the latest loaded sheet wins.
-- Grain: one row per raw_budget_lines row.
-- Reads: raw_budget_lines.
select
    *,
    row_number() over (
        partition by fiscal_year, agency_code, pro_code
        order by file_id desc, source_row desc
    ) as version_rank
from raw_budget_lines
