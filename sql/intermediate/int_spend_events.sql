-- int_spend_events: spending as dated events: each payment (+) on its pay_date, each refund (-) of a counted
-- payment on its refund date, both in the payment's fiscal year, project, unit and money kind. A refund held back
-- (int_voucher_refunds.is_held: it would take its voucher's refunds above pay_amt, a refund_excess finding) is not
-- an event: it does not reduce spending.
-- Kind: view
-- Grain: one row per payment or applied refund.
-- Reads: int_payments, int_voucher_refunds.
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
    fiscal_year,
    agency_code,
    pro_code,
    money,  -- noqa: RF04
    pay_cert_no,
    'refund' as event_kind,
    refund_date as event_date,
    -refund_amt as amount,
    refund_no,
    source_file,
    source_row
from int_voucher_refunds
where not is_held
