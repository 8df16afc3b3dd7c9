-- stg_spend_asof: the spending events dated on or before the as-of date, with running totals per project and
-- money kind in date order (to find the payment that crosses a budget line).
-- Grain: one row per payment or applied refund dated <= as_of.
-- Reads: stg_spend_events, stg_params.
select
    e.*,
    sum(e.amount) over (
        partition by e.fiscal_year, e.agency_code, e.pro_code, e.money
        order by e.event_date, e.event_kind, e.pay_cert_no, e.refund_no
        rows between unbounded preceding and current row
    ) as running_amt
from stg_spend_events as e
cross join stg_params as p
where e.event_date <= p.as_of
