-- carryover_squeeze: the carry-over squeeze findings (结转挤占) as of the as-of date, with their evidence.
-- Kind: per_as_of (a rerun for the same date replaces that date's rows).
-- Grain: one row per squeeze finding (a voucher and a rule).
-- Reads: rule_carryover_squeeze, stg_params.
select
    s.fiscal_year,
    p.as_of,
    s.agency_code,
    s.pro_code,
    s.pay_cert_no,
    s.amount,
    s.rule,  -- noqa: RF04
    s.evidence,
    s.source_file,
    s.source_row
from rule_carryover_squeeze as s
cross join stg_params as p
