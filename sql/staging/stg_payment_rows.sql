-- stg_payment_rows: every loaded payment-export row with its version rank and status class.
-- Grain: one row per raw_payments row.
-- Reads: raw_payments, source_file_log, ref_status_words.
-- The same pay_cert_no in several exports is one payment. Its content (amount, project, date, status) is that of
-- the later export (later = the file whose latest pay_date is later; ties by file name, then the later row). The
-- row that counts is the first loaded row with that content, so an overlapping export adds only new vouchers and
-- its repeated rows count as its duplicates. Every other row is a duplicate.
with rows_with_file as (
    select
        p.*,
        f.latest_date as file_latest_date
    from raw_payments as p
    inner join source_file_log as f on p.file_id = f.file_id
),

latest as (
    select
        *,
        first_value(pay_amt) over newest_first as latest_pay_amt,
        first_value(pro_code) over newest_first as latest_pro_code,
        first_value(pay_date) over newest_first as latest_pay_date,
        first_value(coalesce(status, '')) over newest_first as latest_status
    from rows_with_file
    window newest_first as (
        partition by pay_cert_no
        order by file_latest_date desc, source_file desc, source_row desc
    )
),

ranked as (
    select
        *,
        pay_amt = latest_pay_amt
        and pro_code = latest_pro_code
        and pay_date = latest_pay_date
        and coalesce(status, '') = latest_status as is_latest_content,
        row_number() over (
            partition by pay_cert_no
            order by
                pay_amt = latest_pay_amt
                and pro_code = latest_pro_code
                and pay_date = latest_pay_date
                and coalesce(status, '') = latest_status desc,
                file_id asc,
                source_row asc
        ) as version_rank
    from latest
)

select
    r.*,
    r.version_rank = 1 as is_winner,
    coalesce(w.status_class, case when r.status is null then 'counted' else 'unknown' end) as status_class,
    r.pay_amt < 0 and r.ori_pay_cert_no is not null as is_inline_refund,
    -- the earliest year a 指标文号 names (丰财预〔2023〕88号 -> 2023): earlier than the payment's year = carry-over
    cast(list_min(regexp_extract_all(r.bgt_doc_no, '[〔\[(（【]((?:19|20|21)\d{2})[〕\])）】]', 1)) as integer)
        as bgt_doc_year
from ranked as r
left join ref_status_words as w on r.status = w.word
