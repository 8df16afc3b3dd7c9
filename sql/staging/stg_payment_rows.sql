-- stg_payment_rows: every loaded payment-export row with its version rank and status class.
-- Grain: one row per raw_payments row.
-- Reads: raw_payments, source_file_log, ref_status_words.
-- The same pay_cert_no in several exports is one payment. Its content (amount, project, date, status) is that of
-- the later export (later = the file whose latest pay_date is later; ties by file name, then the later row). The
-- row that counts is the first loaded row with that content, so an overlapping export adds only new vouchers and
-- its repeated rows count as its duplicates. Every other row is a duplicate.
-- Speed: most vouchers are exported once; their only row is its own latest content and the winner, so the two
-- window passes (which buffer every column of every row) run only on the rows of vouchers exported more than once.
with rows_with_file as not materialized (
    select
        p.*,
        f.latest_date as file_latest_date
    from raw_payments as p
    inner join source_file_log as f on p.file_id = f.file_id
),

-- the earliest year a 指标文号 names (丰财预〔2023〕88号 -> 2023), once per distinct 指标文号
doc_years as (
    select
        bgt_doc_no,
        cast(list_min(regexp_extract_all(bgt_doc_no, '[〔\[(（【]((?:19|20|21)\d{2})[〕\])）】]', 1)) as integer)
            as bgt_doc_year
    from (select distinct bgt_doc_no from raw_payments) as d
),

repeated as (
    select pay_cert_no
    from raw_payments
    group by pay_cert_no
    having count(*) > 1
),

single as (
    select
        r.*,
        r.pay_amt as latest_pay_amt,
        r.pro_code as latest_pro_code,
        r.pay_date as latest_pay_date,
        coalesce(r.status, '') as latest_status,
        true as is_latest_content,
        cast(1 as bigint) as version_rank
    from rows_with_file as r
    where not exists (
        select 1 from repeated as d
        where d.pay_cert_no = r.pay_cert_no
    )
),

latest as (
    select
        *,
        first_value(pay_amt) over newest_first as latest_pay_amt,
        first_value(pro_code) over newest_first as latest_pro_code,
        first_value(pay_date) over newest_first as latest_pay_date,
        first_value(coalesce(status, '')) over newest_first as latest_status
    from rows_with_file as r
    where
        exists (
            select 1 from repeated as d
            where d.pay_cert_no = r.pay_cert_no
        )
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
    union all
    select * from single
)

select
    r.*,
    r.version_rank = 1 as is_winner,
    coalesce(w.status_class, case when r.status is null then 'counted' else 'unknown' end) as status_class,
    r.pay_amt < 0 and r.ori_pay_cert_no is not null as is_inline_refund,
    -- earlier than the payment's year = carry-over
    y.bgt_doc_year
from ranked as r
left join ref_status_words as w on r.status = w.word
left join doc_years as y on r.bgt_doc_no = y.bgt_doc_no
