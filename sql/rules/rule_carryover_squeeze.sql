-- rule_carryover_squeeze (结转挤占): current-year quota consumed by prior-year obligations, as of the as-of date.
--   prior_year_text: a current-year-money payment (unbudgeted included) whose use_des names an earlier year
--     (2023年度…尾款) or says 上年/上年度/以前年度/往年/去年, or whose contract_no carries an earlier year;
--     amount = its net of refunds dated <= as_of.
--   carryover_excess: carry-over payments beyond carryover_amt: the excess, on the payment that crosses the line.
-- Kind: view
-- Grain: one row per squeeze finding (a voucher and a rule). Every row keeps its evidence.
-- Reads: int_spend_asof, int_payments, int_budget_asof, stg_params.
with candidates as (
    -- only payments whose text can match (the same patterns, unanchored) are parsed
    select
        p.*,
        coalesce(list_min(regexp_extract_all(p.use_des, '((?:19|20)\d{2})\s*年', 1)), '') as use_year,
        regexp_extract(p.use_des, '(以前年度|上年度|上年|往年|去年)', 1) as use_word,
        -- a year standing on its own in the contract number (HT-2023-015, 2023采购12号), not digits of a serial
        coalesce(list_min(regexp_extract_all(p.contract_no, '(?:^|[^0-9])((?:19|20)\d{2})(?:[^0-9]|$)', 1)), '')
            as contract_year
    from int_payments as p
    where
        regexp_matches(p.use_des, '(?:19|20)\d{2}\s*年|以前年度|上年度|上年|往年|去年')
        or regexp_matches(p.contract_no, '(?:^|[^0-9])(?:19|20)\d{2}(?:[^0-9]|$)')
),

net as (
    select
        pay_cert_no,
        sum(amount) as net_amt
    from int_spend_asof
    where money = 'current' and pay_cert_no in (select c.pay_cert_no from candidates as c)
    group by pay_cert_no
),

text_matches as (
    select
        c.*,
        n.net_amt
    from candidates as c
    inner join net as n on c.pay_cert_no = n.pay_cert_no
),

prior_year_text as (
    select
        fiscal_year,
        agency_code,
        pro_code,
        pay_cert_no,
        cast(net_amt as decimal(18, 2)) as amount,
        'prior_year_text' as rule,  -- noqa: RF04
        case
            when use_year <> '' and cast(use_year as integer) < fiscal_year
                then '用途「' || use_des || '」含以前年度「' || use_year || '年」'
            when use_word <> '' then '用途「' || use_des || '」含「' || use_word || '」'
            else '合同编号「' || contract_no || '」含以前年度 ' || contract_year
        end as evidence,
        source_file,
        source_row
    from text_matches
    where
        (use_year <> '' and cast(use_year as integer) < fiscal_year)
        or use_word <> ''
        or (contract_year <> '' and cast(contract_year as integer) < fiscal_year)
),

carryover_net as (
    -- each carry-over payment with its net of refunds dated <= as_of
    select
        fiscal_year,
        agency_code,
        pro_code,
        pay_cert_no,
        min(event_date) filter (where event_kind = 'payment') as pay_date,
        sum(amount) as net_amt,
        max(source_file) filter (where event_kind = 'payment') as source_file,
        max(source_row) filter (where event_kind = 'payment') as source_row
    from int_spend_asof
    where money = 'carryover'
    group by fiscal_year, agency_code, pro_code, pay_cert_no
),

carryover_ranked as (
    -- the project's net carry-over total and, for each payment, the net of the payments after it
    select
        c.*,
        coalesce(b.carryover_amt, 0) as carryover_amt,
        sum(c.net_amt) over project_all as total_amt,
        coalesce(sum(c.net_amt) over later_first, 0) as later_amt
    from carryover_net as c
    left join int_budget_asof as b
        on c.fiscal_year = b.fiscal_year and c.agency_code = b.agency_code and c.pro_code = b.pro_code
    window
        project_all as (partition by c.fiscal_year, c.agency_code, c.pro_code),
        later_first as (
            partition by c.fiscal_year, c.agency_code, c.pro_code
            order by c.pay_date desc, c.pay_cert_no desc
            rows between unbounded preceding and 1 preceding
        )
),

carryover_excess as (
    -- the excess (net total - carryover_amt) sits on the latest payments: the one crossing the line takes the rest
    select
        fiscal_year,
        agency_code,
        pro_code,
        pay_cert_no,
        cast(least(net_amt, total_amt - carryover_amt - later_amt) as decimal(18, 2)) as amount,
        'carryover_excess' as rule,  -- noqa: RF04
        '上年结转数 ' || carryover_amt || ' 元；截至 ' || (select sp.as_of from stg_params as sp)
        || ' 结转资金净支出 ' || cast(total_amt as decimal(18, 2)) || ' 元；超出 '
        || cast(total_amt - carryover_amt as decimal(18, 2)) || ' 元，本笔（净额 ' || cast(net_amt as decimal(18, 2))
        || ' 元）占 ' || cast(least(net_amt, total_amt - carryover_amt - later_amt) as decimal(18, 2)) || ' 元'
            as evidence,
        source_file,
        source_row
    from carryover_ranked
    where total_amt > carryover_amt and later_amt < total_amt - carryover_amt and net_amt > 0
),

findings as (
    select * from prior_year_text
    union all
    select * from carryover_excess
)

select
    *,
    '凭证 ' || pay_cert_no || ' 挤占 ' || amount || ' 元：' || evidence as detail
from findings
