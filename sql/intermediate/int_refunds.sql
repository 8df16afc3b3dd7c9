-- int_refunds: every refund that counts, from refund notices and from negative vouchers in payment exports.
-- Kind: view
-- Grain: one row per refund (refund notices de-duplicated by refund_no, the later export winning).
-- Reads: stg_refund_notices, int_payment_versions.
with notices as (
    select
        *,
        row_number() over (
            partition by refund_no
            order by file_latest_date desc, source_file desc, source_row desc
        ) as version_rank
    from stg_refund_notices
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
from int_payment_versions
where is_winner and is_inline_refund and status_class = 'counted'
