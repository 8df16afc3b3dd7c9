-- rule_control_total_mismatch: a file whose totals row (合计) differs from the sum of its parsed data rows
-- (voided and duplicate rows included).
-- Grain: one row per file.
-- Reads: source_file_log, raw_payments (the file's unit, when it has one).
select
    coalesce(f.fiscal_year, cast(year(f.latest_date) as integer)) as fiscal_year,
    (
        select min(p.agency_code) from raw_payments as p
        where p.file_id = f.file_id
        having count(distinct p.agency_code) = 1
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
