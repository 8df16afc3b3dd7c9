-- rule_overspend: current-year payments above cur_amt, or carry-over payments above carryover_amt, as of the
-- as-of date. Reported on the payment whose running total crosses the line; amount is the project's excess.
-- Kind: view
-- Grain: one row per budgeted project and money kind in excess.
-- Reads: int_spend_asof, int_budget_asof.
with totals as (
    select
        fiscal_year,
        agency_code,
        pro_code,
        money,  -- noqa: RF04
        sum(amount) as total_amt
    from int_spend_asof
    group by fiscal_year, agency_code, pro_code, money
),

over_limit as (
    select
        t.*,
        case when t.money = 'current' then b.cur_amt else b.carryover_amt end as limit_amt
    from totals as t
    inner join int_budget_asof as b
        on t.fiscal_year = b.fiscal_year and t.agency_code = b.agency_code and t.pro_code = b.pro_code
    where t.total_amt > case when t.money = 'current' then b.cur_amt else b.carryover_amt end
),

limits as (
    select
        s.*,
        o.limit_amt,
        o.total_amt,
        sum(s.amount) over (
            partition by s.fiscal_year, s.agency_code, s.pro_code, s.money
            order by s.event_date, s.event_kind, s.pay_cert_no, s.refund_no
            rows between unbounded preceding and current row
        ) as running_amt
    from int_spend_asof as s
    inner join over_limit as o
        on
            s.fiscal_year = o.fiscal_year
            and s.agency_code = o.agency_code
            and s.pro_code = o.pro_code
            and s.money = o.money
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
