-- rule_refund_excess (退回超额): a refund (notice or negative voucher) that would take its voucher's refunded total
-- above the voucher's pay_amt, dated on or before the as-of date. It is held back like an orphan refund: it does
-- not reduce spending until the data is corrected, and a voucher's net is never negative (CONTRACT.md 1.2).
-- Which refunds are held back: a voucher's refunds in order of refund_date, refund_no (then source, file, row);
-- the first one whose running total exceeds pay_amt and every later one (int_voucher_refunds.is_held). Refunds
-- before it stay applied. A refund's status depends only on refunds dated on or before it, so it is the same at
-- every as-of date, and a held-back refund shows here from its refund date on.
-- Kind: view
-- Grain: one row per held-back refund dated <= as_of, in its voucher's fiscal year, unit and project; amount is the
-- refund's amount (all of it is held back).
-- Reads: int_voucher_refunds, stg_params.
select
    r.fiscal_year,
    r.agency_code,
    r.pro_code,
    r.pay_cert_no,
    r.refund_amt as amount,
    '退回 ' || r.refund_no || ' (' || r.refund_amt || ' 元, ' || r.refund_date || ') 使原支付凭证 ' || r.pay_cert_no
    || ' 的累计退回达到 ' || r.refunded_cum || ' 元，超过支付金额 ' || r.pay_amt || ' 元：暂不冲减支出，待数据更正'
        as detail,
    r.source_file,
    r.source_row,
    r.refund_no
from int_voucher_refunds as r
where r.is_held and r.refund_date <= (select sp.as_of from stg_params as sp)
