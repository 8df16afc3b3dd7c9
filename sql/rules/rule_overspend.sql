-- rule_overspend: current-year payments above cur_amt, or carry-over payments above carryover_amt, as of the
-- as-of date. Reported on the payment whose running total crosses the line; amount is the project's excess.
-- Grain: one row per budgeted project and money kind in excess.
-- Reads: stg_spend_asof, budget_lines.
with limits as (
    select
        s.*,
        case when s.money = 'current' then b.cur_amt else b.carryover_amt end as limit_amt,
        sum(s.amount) over (partition by s.fiscal_year, s.agency_code, s.pro_code, s.money) as total_amt
    from stg_spend_asof as s
    inner join budget_lines as b
        on s.fiscal_year = b.fiscal_year and s.agency_code = b.agency_code and s.pro_code = b.pro_code
),

crossing as (
    select
        *,
        row_number() over (
            partition by fiscal_year, agency_code, pro_code, money
            order by event_date desc, event_kind desc, pay_cert_no desc
        ) as last_cross
    from limits
    where total_amt > limit_amt and running_amt > limit_amt and running_amt - amount <= limit_amt
)

select
    fiscal_year,
    agency_code,
    pro_code,
    pay_cert_no,
    cast(total_amt - limit_amt as decimal(18, 2)) as amount,
    case when money = 'current' then '当年财政拨款' else '上年结转资金' end
    || '支出 ' || cast(total_amt as decimal(18, 2)) || ' 元，超过'
    || case when money = 'current' then '全年预算数 ' else '上年结转数 ' end
    || limit_amt || ' 元，超支 ' || cast(total_amt - limit_amt as decimal(18, 2)) || ' 元（凭证 '
    || pay_cert_no || ' 越线）' as detail,
    source_file,
    source_row
from crossing
where last_cross = 1
