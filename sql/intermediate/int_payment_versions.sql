-- int_payment_versions: every payment-export row with its version rank among the rows of its voucher.
-- Kind: view
-- Grain: one row per raw_payments row.
-- Reads: stg_payment_rows.
-- The same pay_cert_no in several exports is one payment. Its content (amount, project, date, status) is that of
-- the later export (later = the file whose latest pay_date is later; ties by file name, then the later row). The
-- row that counts (is_winner) is the first loaded row with that content, so an overlapping export adds only new
-- vouchers and its repeated rows count as its duplicates. Every other row is a duplicate.
-- Speed: most vouchers are exported once; their only row is its own latest content and the winner, so the two
-- window passes (which buffer every column of every row) run only on the rows of vouchers exported more than once.
with repeated as (
    select pay_cert_no
    from stg_payment_rows
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
    from stg_payment_rows as r
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
    from stg_payment_rows as r
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
    *,
    version_rank = 1 as is_winner
from ranked
