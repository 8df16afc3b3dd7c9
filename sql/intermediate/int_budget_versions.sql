-- int_budget_versions: every budget-sheet row as a version of its project's budget (CONTRACT.md 1.3).
-- Kind: view
-- Grain: one row per raw_budget_lines row.
-- Reads: stg_budget_lines.
-- Of the rows of one project with the same effective date, the later file name wins (is_version; the others are
-- duplicates; the same file name loaded again, a replaced file, wins by its later load). Versions are ordered by
-- effective date, never by load order: version_no 1 is the earliest, version_rank 1 the latest. A version is in
-- force from its effective_date until the next version's (valid_until, exclusive; NULL: still in force).
-- orig_reply_amt is the earliest version's 年初预算数.
with deduplicated as (
    select
        *,
        row_number() over (
            partition by fiscal_year, agency_code, pro_code, effective_date
            order by source_file desc, file_id desc, source_row desc
        ) = 1 as is_version
    from stg_budget_lines
),

versions as (
    select
        file_id,
        source_row,
        row_number() over earliest_first as version_no,
        row_number() over (
            partition by fiscal_year, agency_code, pro_code
            order by effective_date desc
        ) as version_rank,
        lead(effective_date) over earliest_first as valid_until,
        first_value(reply_amt) over earliest_first as orig_reply_amt
    from deduplicated
    where is_version
    window earliest_first as (partition by fiscal_year, agency_code, pro_code order by effective_date)
)

select
    d.*,
    v.version_no,
    v.version_rank,
    v.valid_until,
    v.orig_reply_amt
from deduplicated as d
left join versions as v on d.file_id = v.file_id and d.source_row = v.source_row
