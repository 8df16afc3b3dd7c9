-- payments: the counted payments (CONTRACT.md section 3), all loaded; the marts apply as-of dates.
-- Grain: one row per voucher (pay_cert_no), the winning version; voided, unknown-status and inline-refund rows
-- excluded. refunded_amt sums every refund of the voucher, whatever its date (stg_refunds has the dates).
-- Reads: stg_payment_rows, stg_refunds.
with refunds as (
    select
        ori_pay_cert_no,
        sum(refund_amt) as refunded_amt,
        count(*) as refund_count
    from stg_refunds
    group by ori_pay_cert_no
),

counted as (
    select *
    from stg_payment_rows
    where is_winner and status_class = 'counted' and not is_inline_refund
)

select
    c.pay_cert_no,
    c.pay_date,
    year(c.pay_date) as fiscal_year,
    c.agency_code,
    c.agency_name,
    c.pro_code,
    c.pro_name,
    c.bgt_doc_no,
    c.bgt_source,
    c.exp_func_code,
    c.dep_bgt_eco_code,
    c.gov_bgt_eco_code,
    c.fund_type,
    c.pay_type,
    case
        when coalesce(c.bgt_source, '') like '%结转%' then 'carryover'
        when c.bgt_doc_year < year(c.pay_date) then 'carryover'
        else 'current'
    end as money,  -- noqa: RF04
    c.pay_amt,
    cast(coalesce(r.refunded_amt, 0) as decimal(18, 2)) as refunded_amt,
    cast((c.pay_amt - coalesce(r.refunded_amt, 0)) as decimal(18, 2)) as net_amt,
    coalesce(r.refund_count, 0) as refund_count,
    c.payee_acct_name,
    c.payee_acct_no,
    c.payee_bank,
    c.use_des,
    c.contract_no,
    c.status,
    c.source_file,
    c.source_row
from counted as c
left join refunds as r on c.pay_cert_no = r.ori_pay_cert_no
