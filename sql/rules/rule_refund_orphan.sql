-- rule_refund_orphan: a refund (notice or negative voucher) whose original voucher is not a counted payment.
-- Kind: view
-- Grain: one row per refund. The refund is kept and not applied to any project.
-- Reads: int_refunds, int_payments, int_payment_versions, stg_params.
select
    cast(year(r.refund_date) as integer) as fiscal_year,
    r.agency_code,
    cast(null as varchar) as pro_code,
    r.ori_pay_cert_no as pay_cert_no,
    r.refund_amt as amount,
    '退回 ' || r.refund_no || ' (' || r.refund_amt || ' 元, ' || r.refund_date || ') 的原支付凭证 '
    || r.ori_pay_cert_no
    || case
        when
            exists (
                select 1 from int_payment_versions as s
                where s.pay_cert_no = r.ori_pay_cert_no
            )
            then ' 已作废或状态不明'
        else ' 不在已载入的支付明细中'
    end as detail,
    r.source_file,
    r.source_row
from int_refunds as r
where r.refund_date <= (select sp.as_of from stg_params as sp) and not exists (
    select 1 from int_payments as p
    where p.pay_cert_no = r.ori_pay_cert_no
)
