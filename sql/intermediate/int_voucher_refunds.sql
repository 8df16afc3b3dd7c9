-- int_voucher_refunds: every refund of a counted payment (notice or inline negative voucher), in its voucher's
-- order, with the voucher's refunded total so far and whether the refund is applied or held back (refund_excess).
-- Kind: view
-- Grain: one row per refund whose original voucher is a counted payment (others are refund_orphan findings).
-- Reads: int_refunds, int_payments.
-- The order of a voucher's refunds: refund_date, then refund_no, then source (inline before notice), file and row.
-- refunded_cum is the voucher's refunds in that order up to and including this one. A refund is held back
-- (is_held) when refunded_cum > pay_amt: the first refund that takes the total above the voucher's pay_amt and
-- every later one (refund amounts are positive, so refunded_cum only grows). Held back refunds are not applied:
-- a voucher's applied refunds never exceed its pay_amt, so its net is never negative. The rule reads only earlier
-- refunds, all dated on or before this one's date, so a refund's status is the same at every as-of date on or
-- after it, and a refund dated later can never change a figure as of an earlier date.
select
    r.refund_source,
    r.refund_no,
    r.ori_pay_cert_no as pay_cert_no,
    r.refund_date,
    r.refund_amt,
    r.reason,
    p.fiscal_year,  -- a refund reduces its voucher's year, project, unit and money kind, on the refund date
    p.agency_code,
    p.pro_code,
    p.money,  -- noqa: RF04
    p.pay_amt,
    sum(r.refund_amt) over voucher_order as refunded_cum,
    sum(r.refund_amt) over voucher_order > p.pay_amt as is_held,
    r.file_id,
    r.source_file,
    r.source_row
from int_refunds as r
inner join int_payments as p on r.ori_pay_cert_no = p.pay_cert_no
window voucher_order as (
    partition by r.ori_pay_cert_no
    order by r.refund_date, r.refund_no, r.refund_source, r.source_file, r.source_row
    rows between unbounded preceding and current row
)
