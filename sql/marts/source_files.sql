-- source_files: every input file seen, with its row accounting (CONTRACT.md section 3).
-- Kind: view
-- Grain: one row per file (sha256), plus one per identical copy under another name (status duplicate_file).
-- Reads: source_file_log, duplicate_files, int_payment_versions, int_refunds, int_budget_versions.
-- rows_read = rows_loaded + rows_duplicate + rows_rejected + rows_skipped. A valid row is loaded when it is the
-- winning version of its voucher or refund notice, or a version of its budget line (a budget sheet's rows are
-- versions, CONTRACT.md 1.3: a superseded version is loaded, it is in force before the next one), else it counts
-- as a duplicate (a budget row is one when a later-named sheet gives the same project the same effective date).
with winners as (
    select
        file_id,
        count(*) as n
    from int_payment_versions
    where is_winner
    group by file_id
    union all
    select
        file_id,
        count(*) as n
    from int_refunds
    where refund_source = 'notice'
    group by file_id
    union all
    select
        file_id,
        count(*) as n
    from int_budget_versions
    where is_version
    group by file_id
),

loaded as (
    select
        file_id,
        sum(n) as n
    from winners
    group by file_id
)

select
    f.file_name,
    f.sha256,
    f.kind,
    f.status,
    f.error,
    f.rows_read,
    cast(coalesce(l.n, 0) as bigint) as rows_loaded,
    cast((f.rows_valid - coalesce(l.n, 0)) as bigint) as rows_duplicate,
    f.rows_rejected,
    f.rows_skipped,
    f.control_total,
    f.parsed_total,
    f.loaded_at,
    f.file_id,
    f.file_path,
    f.sheet,
    f.encoding,
    f.units,
    f.fiscal_year,
    f.latest_date,
    f.run_id
from source_file_log as f
left join loaded as l on f.file_id = l.file_id

union all

-- a byte-identical copy of a file already read: not read again, reported so whoever dropped it knows
select
    d.file_name,
    d.sha256,
    f.kind,
    'duplicate_file' as status,
    d.message as error,
    cast(0 as bigint) as rows_read,
    cast(0 as bigint) as rows_loaded,
    cast(0 as bigint) as rows_duplicate,
    cast(0 as bigint) as rows_rejected,
    cast(0 as bigint) as rows_skipped,
    null as control_total,
    null as parsed_total,
    d.first_seen as loaded_at,
    null as file_id,
    null as file_path,
    null as sheet,
    null as encoding,  -- noqa: RF04
    null as units,
    f.fiscal_year,
    null as latest_date,
    d.run_id
from duplicate_files as d
left join source_file_log as f on d.sha256 = f.sha256
