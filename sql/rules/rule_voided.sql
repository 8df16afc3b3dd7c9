-- rule_voided: voided or withdrawn vouchers (已作废/作废/已撤销): loaded, never counted.
-- Kind: view
-- Grain: one row per voided voucher (winning version).
-- Reads: int_payment_versions, stg_params.
select
    cast(year(pay_date) as integer) as fiscal_year,
    agency_code,
    pro_code,
    pay_cert_no,
    pay_amt as amount,
    '凭证 ' || pay_cert_no || ' 状态「' || status || '」: 不计入支出' as detail,
    source_file,
    source_row
from int_payment_versions
where
    is_winner
    and pay_date <= (select sp.as_of from stg_params as sp)
    and status_class = 'voided'
