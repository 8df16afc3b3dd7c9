-- rule_voided: voided or withdrawn vouchers (已作废/作废/已撤销): loaded, never counted.
-- Grain: one row per voided voucher (winning version).
-- Reads: stg_payment_rows.
select
    cast(year(pay_date) as integer) as fiscal_year,
    agency_code,
    pro_code,
    pay_cert_no,
    pay_amt as amount,
    '凭证 ' || pay_cert_no || ' 状态「' || status || '」: 不计入支出' as detail,
    source_file,
    source_row
from stg_payment_rows
where
    is_winner
    and pay_date <= (select sp.as_of from stg_params as sp)
    and status_class = 'voided'
