-- int_spend_asof: the spending events dated on or before the as-of date.
-- Kind: view
-- Grain: one row per payment or applied refund dated <= as_of.
-- Reads: int_spend_events, stg_params.
-- Running totals (to find the payment that crosses a budget line) are computed by the rules that need them, on
-- the few partitions concerned: a window here buffers every column of every event for every reader.
select e.*
from int_spend_events as e
cross join stg_params as p
where e.event_date <= p.as_of
