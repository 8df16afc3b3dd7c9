-- The unit of rejected rows whose own agency code cell gives none (run after every load).
-- A row names its unit by its agency name (a payment's 预算单位名称, a budget sheet's 预算单位 title) when that
-- name belongs to exactly one agency code, or, a refund, by its original voucher's unit. Rows still without a unit
-- are listed in the operator report, never in a unit's outputs.
update rejected_rows as r
set
    agency_code = coalesce(
        (
            select min(n.agency_code) from (
                select
                    b.agency_code,
                    b.agency_name
                from raw_budget_lines as b
                union all
                select
                    p.agency_code,
                    p.agency_name
                from raw_payments as p
            ) as n
            where n.agency_name = r.agency_name
            having count(distinct n.agency_code) = 1
        ),
        (
            select min(v.agency_code) from raw_payments as v
            where v.pay_cert_no = r.ori_pay_cert_no
            having count(distinct v.agency_code) = 1
        )
    )
where r.agency_code is null and (r.agency_name is not null or r.ori_pay_cert_no is not null);
