-- rule_carryover_squeeze (结转挤占): current-year quota consumed by prior-year obligations, as of the as-of date.
--   prior_year_text: a current-year-money payment (unbudgeted included) whose use_des names an earlier year
--     (2023年度…尾款) or says 上年/上年度/以前年度/往年/去年, or whose contract_no carries an earlier year;
--     amount = its net of refunds dated <= as_of.
--   carryover_excess: carry-over payments beyond carryover_amt: the excess, on the payment that crosses the line.
-- Grain: one row per squeeze finding (a voucher and a rule). Every row keeps its evidence.
-- Reads: stg_spend_asof, stg_payments, budget_lines.
with net as (
    select
        pay_cert_no,
        sum(amount) as net_amt
    from stg_spend_asof
    where money = 'current'
    group by pay_cert_no
),

text_matches as (
    select
        p.*,
        n.net_amt,
        coalesce(list_min(regexp_extract_all(p.use_des, '((?:19|20)\d{2})\s*年', 1)), '') as use_year,
        regexp_extract(p.use_des, '(以前年度|上年度|上年|往年|去年)', 1) as use_word,
        coalesce(list_min(regexp_extract_all(p.contract_no, '((?:19|20)\d{2})', 1)), '') as contract_year
    from stg_payments as p
    inner join net as n on p.pay_cert_no = n.pay_cert_no
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

carryover_running as (
    select
        s.*,
        coalesce(b.carryover_amt, 0) as carryover_amt
    from stg_spend_asof as s
    left join budget_lines as b
        on s.fiscal_year = b.fiscal_year and s.agency_code = b.agency_code and s.pro_code = b.pro_code
    where s.money = 'carryover' and s.event_kind = 'payment'
),

carryover_excess as (
    select
        fiscal_year,
        agency_code,
        pro_code,
        pay_cert_no,
        cast(least(amount, running_amt - carryover_amt) as decimal(18, 2)) as amount,
        'carryover_excess' as rule,  -- noqa: RF04
        '上年结转数 ' || carryover_amt || ' 元；累计结转资金支付 ' || running_amt || ' 元（含本笔 ' || amount
        || ' 元）；超出 ' || cast(least(amount, running_amt - carryover_amt) as decimal(18, 2)) || ' 元' as evidence,
        source_file,
        source_row
    from carryover_running
    where running_amt > carryover_amt
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
