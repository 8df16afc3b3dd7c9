-- rule_control_total_mismatch: a file whose totals row (合计) differs from the sum of its parsed data rows
-- (voided and duplicate rows included).
-- Grain: one row per file.
-- Reads: source_file_log.
select
    fiscal_year,
    cast(null as varchar) as agency_code,
    cast(null as varchar) as pro_code,
    cast(null as varchar) as pay_cert_no,
    cast((control_total - parsed_total) as decimal(18, 2)) as amount,
    file_name || ': 合计行 ' || control_total || ' 元, 明细合计 ' || parsed_total || ' 元, 差额 '
    || (control_total - parsed_total) || ' 元' as detail,
    file_name as source_file,
    cast(null as integer) as source_row
from source_file_log
where status = 'loaded' and control_total is not null and control_total <> parsed_total
