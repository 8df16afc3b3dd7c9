-- noqa: disable=RF04
-- alert_candidates: the alerts that hold at the as-of date (CONTRACT.md section 2 and 3).
-- Built by the alerts step (flows/alerts/evaluate.py) as a temp table, after the session variables are set.
-- Kind: step
-- Grain: one row per alert_key (findings sharing a key are one alert): behind_plan per project, carryover_lag per
-- project, carryover_squeeze per voucher, exception per fatal finding (refund_excess: per held-back refund, its key
-- ends in :voucher:refund_no).
-- Reads: behind_plan, exceptions.
-- Variables: as_of, and behind_plan's behind_warning_pp, behind_critical_pp, elapsed_baseline.
-- behind_plan: the projects behind_plan judges behind (severity not NULL) at the as-of date.
with params as (
    select cast(getvariable('as_of') as date) as as_of
),

behind as (
    select
        'behind_plan' as kind,
        b.severity,
        b.fiscal_year,
        b.agency_code,
        b.pro_code,
        null as pay_cert_no,
        b.gap_pp,
        b.gap_amt as amount,
        b.pro_name || '（' || b.pro_code || '）' || b.target_label || ' '
        || b.target_amt || ' 元，实际支出 ' || b.paid_cum || ' 元，落后 ' || b.gap_pp || ' 个百分点' as detail
    from behind_plan as b
    cross join params as p
    where b.as_of = p.as_of and b.severity is not null
),

from_exceptions as (
    select
        case
            when e.kind in ('carryover_lag', 'carryover_squeeze') then e.kind
            else 'exception'
        end as kind,
        case when e.kind in ('carryover_lag', 'carryover_squeeze') then 'warning' else e.severity end as severity,
        e.fiscal_year,
        e.agency_code,
        e.pro_code,
        case
            when e.kind = 'carryover_squeeze' then e.pay_cert_no
            -- one alert per held-back refund: a voucher can have several (its refund numbers are unique)
            when e.kind = 'refund_excess' then e.kind || ':' || e.pay_cert_no || ':' || e.refund_no
            when e.kind not in ('carryover_lag', 'carryover_squeeze')
                then e.kind || ':' || coalesce(e.pay_cert_no, e.source_file || '#' || coalesce(e.source_row, 0), '')
        end as pay_cert_no,
        null as gap_pp,
        e.amount,
        e.detail
    from exceptions as e
    cross join params as p
    where
        e.as_of = p.as_of
        and (e.kind in ('carryover_lag', 'carryover_squeeze') or e.severity = 'fatal')
),

keyed as (
    select
        *,
        concat_ws('|', kind, fiscal_year, agency_code, pro_code, pay_cert_no) as alert_key
    from (
        select * from behind
        union all
        select * from from_exceptions
    ) as a
)

-- one row per alert_key (alerts.alert_key is its primary key): findings that share a key (two refunds of one
-- unknown voucher are two refund_orphan findings with one key) are one alert, their amounts summed, their details
-- joined
select
    any_value(kind) as kind,  -- the key starts with the kind: one per key
    arg_max(severity, case severity when 'fatal' then 3 when 'critical' then 2 when 'warning' then 1 else 0 end)
        as severity,
    any_value(fiscal_year) as fiscal_year,
    any_value(agency_code) as agency_code,
    any_value(pro_code) as pro_code,
    any_value(pay_cert_no) as pay_cert_no,
    max(gap_pp) as gap_pp,
    sum(amount) as amount,
    string_agg(detail, '；' order by detail) as detail,
    alert_key
from keyed
group by alert_key
