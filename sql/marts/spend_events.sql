-- spend_events: spending as dated events (CONTRACT.md section 5.1): each counted payment (+) on its pay_date,
-- each applied refund (-) of a counted payment on its refund date, in the payment's fiscal year, unit, project
-- and money kind. The marts count exactly these events: for any as-of date D and project, the events with
-- event_date <= D sum to the project's paid_current + paid_carryover as of D (payments.net_amt nets every refund
-- whatever its date, so it only adds up once every refund is dated on or before D).
-- Kind: view
-- Grain: one row per payment or applied refund (refunds of unknown or voided vouchers are not applied: see
-- exceptions, kind refund_orphan).
-- Reads: int_spend_events.
select
    event_date,
    fiscal_year,
    agency_code,
    pro_code,
    pay_cert_no,
    refund_no,
    money,  -- noqa: RF04
    cast(amount as decimal(18, 2)) as amount,
    event_kind,
    source_file,
    source_row
from int_spend_events
