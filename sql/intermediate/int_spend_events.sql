-- int_spend_events: spending as dated events: each payment (+) on its pay_date, each refund (-) of a counted
-- payment on its refund date, both in the payment's fiscal year, project, unit and money kind.
-- Kind: view
-- Grain: one row per payment or applied refund.
-- Reads: int_payments, int_refunds.
select
    fiscal_year,
    agency_code,
    pro_code,
    money,  -- noqa: RF04
    pay_cert_no,
    'payment' as event_kind,
    pay_date as event_date,
    pay_amt as amount,
    cast(null as varchar) as refund_no,
    source_file,
    source_row
from int_payments

union all

select
    p.fiscal_year,  -- a refund reduces its voucher's year, on the refund date
    p.agency_code,
    p.pro_code,
    p.money,  -- noqa: RF04
    p.pay_cert_no,
    'refund' as event_kind,
    r.refund_date as event_date,
    -r.refund_amt as amount,
    r.refund_no,
    r.source_file,
    r.source_row
from int_refunds as r
inner join int_payments as p on r.ori_pay_cert_no = p.pay_cert_no
