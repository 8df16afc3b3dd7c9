-- rule_duplicate_conflict: the same voucher (or refund notice) number with a different amount, project or date.
-- Kind: view
-- Grain: one row per losing version that differs from the winner. The winning version counts; this one does not.
-- Reads: int_payment_versions, stg_params.
with winners as (
    select * from int_payment_versions
    where is_winner
)

select
    cast(year(w.pay_date) as integer) as fiscal_year,
    l.agency_code,
    l.pro_code,
    l.pay_cert_no,
    l.pay_amt as amount,
    '凭证 ' || l.pay_cert_no || ' 在 ' || l.source_file || ' 第' || l.source_row || '行: '
    || l.pay_amt || ' 元 / ' || l.pro_code || ' / ' || l.pay_date
    || '；以 ' || w.source_file || ' 第' || w.source_row || '行为准: '
    || w.pay_amt || ' 元 / ' || w.pro_code || ' / ' || w.pay_date as detail,
    l.source_file,
    l.source_row
from int_payment_versions as l
inner join winners as w on l.pay_cert_no = w.pay_cert_no
where
    not l.is_winner
    and w.pay_date <= (select sp.as_of from stg_params as sp)
    and (l.pay_amt <> w.pay_amt or l.pro_code <> w.pro_code or l.pay_date <> w.pay_date)
