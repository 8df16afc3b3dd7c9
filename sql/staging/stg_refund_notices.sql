-- stg_refund_notices: every loaded refund-notice row with its file's latest refund date.
-- Kind: view
-- Grain: one row per raw_refunds row.
-- Reads: raw_refunds, source_file_log.
select
    r.*,
    f.latest_date as file_latest_date
from raw_refunds as r
inner join source_file_log as f on r.file_id = f.file_id
