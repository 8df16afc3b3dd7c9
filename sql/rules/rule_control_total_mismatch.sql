-- rule_control_total_mismatch: a file whose totals row (合计) differs from the sum of its parsed data rows
-- (voided and duplicate rows included).
-- Kind: view
-- Grain: one row per file.
-- Reads: source_file_log, raw_payments, raw_budget_lines, raw_refunds.
-- agency_code is the file's unit when all its rows name one.
select
    coalesce(f.fiscal_year, cast(year(f.latest_date) as integer)) as fiscal_year,
    (
        select min(u.agency_code) from (
            select p.agency_code from raw_payments as p
            where p.file_id = f.file_id
            union all
            select b.agency_code from raw_budget_lines as b
            where b.file_id = f.file_id
            union all
            select r.agency_code from raw_refunds as r
            where r.file_id = f.file_id
        ) as u
        having count(distinct u.agency_code) = 1
    ) as agency_code,
    cast(null as varchar) as pro_code,
    cast(null as varchar) as pay_cert_no,
    cast((f.control_total - f.parsed_total) as decimal(18, 2)) as amount,
    f.file_name || ': 合计行 ' || f.control_total || ' 元, 明细合计 ' || f.parsed_total || ' 元, 差额 '
    || (f.control_total - f.parsed_total) || ' 元' as detail,
    f.file_name as source_file,
    cast(null as integer) as source_row
from source_file_log as f
where f.status = 'loaded' and f.control_total is not null and f.control_total <> f.parsed_total
