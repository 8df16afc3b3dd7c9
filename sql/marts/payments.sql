-- payments: the counted payments (CONTRACT.md section 3), all loaded; the marts apply as-of dates.
-- Kind: view
-- Grain: one row per voucher (pay_cert_no). refunded_amt sums every refund of the voucher whatever its date
-- (int_spend_events has the dates).
-- Reads: int_payments, int_refunds.
with refunds as (
    select
        ori_pay_cert_no,
        sum(refund_amt) as refunded_amt,
        count(*) as refund_count
    from int_refunds
    group by ori_pay_cert_no
)

select
    p.pay_cert_no,
    p.pay_date,
    p.fiscal_year,
    p.agency_code,
    p.agency_name,
    p.pro_code,
    p.pro_name,
    p.bgt_doc_no,
    p.bgt_source,
    p.exp_func_code,
    p.dep_bgt_eco_code,
    p.gov_bgt_eco_code,
    p.fund_type,
    p.pay_type,
    p.money,  -- noqa: RF04
    p.pay_amt,
    cast(coalesce(r.refunded_amt, 0) as decimal(18, 2)) as refunded_amt,
    cast(p.pay_amt - coalesce(r.refunded_amt, 0) as decimal(18, 2)) as net_amt,
    coalesce(r.refund_count, 0) as refund_count,
    p.payee_acct_name,
    p.payee_acct_no,
    p.payee_bank,
    p.use_des,
    p.contract_no,
    p.status,
    p.source_file,
    p.source_row
from int_payments as p
left join refunds as r on p.pay_cert_no = r.ori_pay_cert_no
