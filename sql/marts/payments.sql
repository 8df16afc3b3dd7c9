-- payments: the counted payments (CONTRACT.md section 3), all loaded; the marts apply as-of dates.
-- Kind: view
-- Grain: one row per voucher (pay_cert_no). refunded_amt sums every applied refund of the voucher whatever its
-- date (int_spend_events has the dates); held_refund_amt the refunds held back because they would take the
-- voucher's refunds above pay_amt (refund_excess findings), which are not in refunded_amt or net_amt: net_amt is
-- never negative.
-- Reads: int_payments, int_voucher_refunds.
with refunds as (
    select
        pay_cert_no,
        sum(refund_amt) filter (where not is_held) as refunded_amt,
        count(*) filter (where not is_held) as refund_count,
        sum(refund_amt) filter (where is_held) as held_refund_amt,
        count(*) filter (where is_held) as held_refund_count
    from int_voucher_refunds
    group by pay_cert_no
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
    cast(coalesce(r.held_refund_amt, 0) as decimal(18, 2)) as held_refund_amt,
    coalesce(r.held_refund_count, 0) as held_refund_count,
    p.payee_acct_name,
    p.payee_acct_no,
    p.payee_bank,
    p.use_des,
    p.contract_no,
    p.status,
    p.source_file,
    p.source_row
from int_payments as p
left join refunds as r on p.pay_cert_no = r.pay_cert_no
