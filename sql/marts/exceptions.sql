-- exceptions: every finding of the rules as of the as-of date (CONTRACT.md section 3): the union of the rule
-- relations, one branch per row of sql/rules/registry.csv (a test checks they match), with severity, category,
-- message and the Chinese names from the registry and sql/rules/labels.csv.
-- Kind: per_as_of (a rerun for the same date replaces that date's rows).
-- Grain: one row per finding.
-- Reads: rule_unbudgeted, rule_duplicate_conflict, rule_overspend, rule_refund_orphan, rule_refund_excess,
-- rule_control_total_mismatch, rule_plan_sum_mismatch, rule_carryover_squeeze, rule_carryover_lag,
-- rule_unknown_status, rule_voided, rule_registry, ref_labels, stg_params.
with findings as (
    -- by name: each rule returns fiscal_year, agency_code, pro_code, pay_cert_no, amount, detail, source_file,
    -- source_row (and may return more, e.g. the squeeze rule and evidence, which are not kept here; refund_no, from
    -- rule_refund_excess, is kept)
    select
        'unbudgeted' as kind,
        *
    from rule_unbudgeted
    union all by name
    select
        'duplicate_conflict' as kind,
        *
    from rule_duplicate_conflict
    union all by name
    select
        'overspend' as kind,
        *
    from rule_overspend
    union all by name
    select
        'refund_orphan' as kind,
        *
    from rule_refund_orphan
    union all by name
    select
        'refund_excess' as kind,
        *
    from rule_refund_excess
    union all by name
    select
        'control_total_mismatch' as kind,
        *
    from rule_control_total_mismatch
    union all by name
    select
        'plan_sum_mismatch' as kind,
        *
    from rule_plan_sum_mismatch
    union all by name
    select
        'carryover_squeeze' as kind,
        *
    from rule_carryover_squeeze
    union all by name
    select
        'carryover_lag' as kind,
        *
    from rule_carryover_lag
    union all by name
    select
        'unknown_status' as kind,
        *
    from rule_unknown_status
    union all by name
    select
        'voided' as kind,
        *
    from rule_voided
)

select
    f.kind,
    g.severity,
    g.category,
    f.fiscal_year,
    p.as_of,
    f.agency_code,
    f.pro_code,
    f.pay_cert_no,
    cast(f.amount as decimal(18, 2)) as amount,
    f.detail,
    f.source_file,
    cast(f.source_row as integer) as source_row,
    g.message,
    g.kind_zh,
    s.label_zh as severity_zh,
    f.refund_no  -- the held-back refund of a refund_excess finding (NULL for other kinds)
from findings as f
inner join rule_registry as g on f.kind = g.kind
left join ref_labels as s on s.domain = 'severity' and g.severity = s.code
cross join stg_params as p
