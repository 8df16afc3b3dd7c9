-- rule_unknown_status: vouchers whose status is neither counted nor voided (e.g. 待审核): not counted.
-- Kind: view
-- Grain: one row per such voucher (winning version).
-- Reads: int_payment_versions, stg_params.
select
    cast(year(pay_date) as integer) as fiscal_year,
    agency_code,
    pro_code,
    pay_cert_no,
    pay_amt as amount,
    '凭证 ' || pay_cert_no || ' 状态「' || status || '」不是已支付或作废: 暂不计入支出' as detail,
    source_file,
    source_row
from int_payment_versions
where
    is_winner
    and pay_date <= (select sp.as_of from stg_params as sp)
    and status_class = 'unknown'
