-- int_payments: the counted payments with their money kind, before refunds.
-- Kind: view
-- Grain: one row per voucher (winning version), voided / unknown-status / inline-refund rows excluded.
-- Reads: int_payment_versions.
-- Carry-over money: bgt_source says 结转, or the 指标文号 names a year before the payment's year.
select
    pay_cert_no,
    pay_date,
    cast(year(pay_date) as integer) as fiscal_year,
    agency_code,
    agency_name,
    pro_code,
    pro_name,
    bgt_doc_no,
    bgt_source,
    exp_func_code,
    dep_bgt_eco_code,
    gov_bgt_eco_code,
    fund_type,
    pay_type,
    case
        when coalesce(bgt_source, '') like '%结转%' then 'carryover'
        when bgt_doc_year < year(pay_date) then 'carryover'
        else 'current'
    end as money,  -- noqa: RF04
    pay_amt,
    payee_acct_name,
    payee_acct_no,
    payee_bank,
    use_des,
    contract_no,
    status,
    file_id,
    source_file,
    source_row
from int_payment_versions
where is_winner and status_class = 'counted' and not is_inline_refund
