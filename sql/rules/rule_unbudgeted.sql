-- rule_unbudgeted: a payment whose (agency_code, pro_code) has no budget line in force at the as-of date in its
-- fiscal year (int_budget_asof: no version of it effective on or before as_of).
-- Kind: view
-- Grain: one row per such payment dated <= as_of; amount is its net of refunds dated <= as_of.
-- Reads: int_spend_asof, int_budget_asof, int_payments.
with unbudgeted as (
    select s.*
    from int_spend_asof as s
    where not exists (
        select 1 from int_budget_asof as b
        where b.fiscal_year = s.fiscal_year and b.agency_code = s.agency_code and b.pro_code = s.pro_code
    )
),

net as (
    select
        pay_cert_no,
        fiscal_year,
        agency_code,
        pro_code,
        sum(amount) as net_amt
    from unbudgeted
    group by pay_cert_no, fiscal_year, agency_code, pro_code
)

select
    n.fiscal_year,
    n.agency_code,
    n.pro_code,
    n.pay_cert_no,
    cast(n.net_amt as decimal(18, 2)) as amount,
    '凭证 ' || n.pay_cert_no || ' 支付 ' || p.pay_amt || ' 元到项目 ' || n.pro_code
    || coalesce('（' || p.pro_name || '）', '') || '，该项目在 ' || n.fiscal_year || ' 年预算中没有预算' as detail,
    p.source_file,
    p.source_row
from net as n
inner join int_payments as p on n.pay_cert_no = p.pay_cert_no
