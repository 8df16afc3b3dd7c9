-- stg_payment_rows: every loaded payment-export row with its file's latest pay_date, its status class and the
-- earliest year its 指标文号 names (丰财预〔2023〕88号 -> 2023; earlier than the payment's year = carry-over).
-- Kind: view
-- Grain: one row per raw_payments row.
-- Reads: raw_payments, source_file_log, ref_status_words.
with doc_years as (
    -- once per distinct 指标文号
    select
        bgt_doc_no,
        cast(list_min(regexp_extract_all(bgt_doc_no, '[〔\[(（【]((?:19|20|21)\d{2})[〕\])）】]', 1)) as integer)
            as bgt_doc_year
    from (select distinct bgt_doc_no from raw_payments) as d
)

select
    p.*,
    f.latest_date as file_latest_date,
    coalesce(w.status_class, case when p.status is null then 'counted' else 'unknown' end) as status_class,
    p.pay_amt < 0 and p.ori_pay_cert_no is not null as is_inline_refund,
    y.bgt_doc_year
from raw_payments as p
inner join source_file_log as f on p.file_id = f.file_id
left join ref_status_words as w on p.status = w.word
left join doc_years as y on p.bgt_doc_no = y.bgt_doc_no
