-- stg_refunds: every refund that counts, from refund notices and from negative vouchers in payment exports.
-- Grain: one row per refund (refund notices de-duplicated by refund_no, the later export winning).
-- Reads: raw_refunds, source_file_log, stg_payment_rows.
with notices as (
    select
        r.*,
        row_number() over (
            partition by r.refund_no
            order by f.latest_date desc, r.source_file desc, r.source_row desc
        ) as version_rank
    from raw_refunds as r
    inner join source_file_log as f on r.file_id = f.file_id
)

select
    'notice' as refund_source,
    refund_no,
    ori_pay_cert_no,
    refund_date,
    refund_amt,
    reason,
    agency_code,
    file_id,
    source_file,
    source_row
from notices
where version_rank = 1

union all

select
    'inline' as refund_source,
    pay_cert_no as refund_no,
    ori_pay_cert_no,
    pay_date as refund_date,
    -pay_amt as refund_amt,
    use_des as reason,
    agency_code,
    file_id,
    source_file,
    source_row
from stg_payment_rows
where is_winner and is_inline_refund and status_class = 'counted'
