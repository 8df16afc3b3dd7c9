"""Sample exports made by this project's own code: one made-up unit (示例县公路事务中心, 990001), fiscal 2025.

The same shapes and numbers as the hand-worked samples the tests check against: a payment export as .xlsx (title
rows, 元 marker, totals row, a voided voucher), a second payment export as UTF-8 CSV with BOM (thousands separators,
an inline refund, an unbudgeted payment), a refund notice, and a budget sheet in 万元 with a quarterly plan.
No real payment data: every name, code and account number is invented.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from openpyxl import Workbook

from schemas.spec import export_header

AGENCY = ("990001", "示例县公路事务中心")
PAYMENT_HEADER = export_header(
    "payments",
    "pay_cert_no pay_date agency_code agency_name pro_code pro_name bgt_doc_no exp_func_code dep_bgt_eco_code"
    " fund_type pay_type payee_acct_name payee_acct_no pay_amt use_des status ori_pay_cert_no",
)
REFUND_HEADER = export_header("refunds", "refund_no ori_pay_cert_no refund_date refund_amt reason")
P1 = ("990001250001", "农村公路安保工程")
P2 = ("990001250002", "桥梁定期检测")
P3 = ("990001250003", "养护道班运行经费")
LUQIAO = ("示例路桥工程有限公司", "4100200300400500600")
WEIXIU = ("示例机电维修部", "4100200300400500888")

# (voucher, date, project, doc, func, payee, amount, use, status, original)
PAYMENTS_H1 = [
    (
        "PV2025000101",
        dt.date(2025, 2, 14),
        P3,
        "示财预〔2025〕3号",
        "2140101",
        ("示例县公路事务中心（道班）", "6228480099990000001"),
        45000,
        "一季度道班运行经费",
        "已支付",
        "",
    ),
    (
        "PV2025000102",
        dt.date(2025, 3, 5),
        P1,
        "示财预〔2024〕97号",
        "2140106",
        LUQIAO,
        120000,
        "上年结转安保工程尾款",
        "已支付",
        "",
    ),
    (
        "PV2025000103",
        dt.date(2025, 3, 28),
        P1,
        "示财预〔2025〕3号",
        "2140106",
        LUQIAO,
        180000,
        "K12+300段护栏安装进度款",
        "已支付",
        "",
    ),
    (
        "PV2025000104",
        dt.date(2025, 4, 20),
        P2,
        "示财预〔2025〕3号",
        "2140106",
        ("示例检测技术有限公司", "4100200300400500777"),
        150000,
        "桥梁定期检测服务费（首期）",
        "已支付",
        "",
    ),
    (
        "PV2025000105",
        dt.date(2025, 5, 9),
        P3,
        "示财预〔2025〕3号",
        "2140101",
        WEIXIU,
        12000,
        "道班设备维修",
        "已作废",
        "",
    ),
    (
        "PV2025000106",
        dt.date(2025, 5, 12),
        P3,
        "示财预〔2025〕3号",
        "2140101",
        WEIXIU,
        12000,
        "道班设备维修",
        "已支付",
        "",
    ),
]
PAYMENTS_JUL = [
    (
        "PV2025000107",
        dt.date(2025, 6, 18),
        P1,
        "示财预〔2025〕3号",
        "2140106",
        LUQIAO,
        240000,
        "2024年度安保工程质保金",
        "已支付",
        "",
    ),
    (
        "PV2025000108",
        dt.date(2025, 6, 30),
        P1,
        "示财预〔2025〕3号",
        "2140106",
        LUQIAO,
        -3000,
        "退回多付监理费",
        "已支付",
        "PV2025000103",
    ),
    (
        "PV2025000109",
        dt.date(2025, 7, 15),
        ("990001250009", "临时用车"),
        "示财预〔2025〕3号",
        "2140199",
        ("示例汽车租赁有限公司", "4100200300400500999"),
        8000,
        "临时租车费用",
        "已支付",
        "",
    ),
]
BUDGET_HEADER = export_header(
    "budget",
    "pro_code pro_name agency_code exp_func_code bgt_doc_no reply_amt adj_amt cur_amt 上年结转数"
    " 一季度计划 二季度计划 三季度计划 四季度计划",
    unit="万元",
)
BUDGET = [
    (*P1, "990001", "2140106", "示财预〔2025〕3号；示财预〔2024〕97号", 120, 0, 120, 30, 20, 40, 40, 20),
    (*P2, "990001", "2140106", "示财预〔2025〕3号；示财预〔2025〕41号", 35, 5, 40, 0, 0, 20, 20, 0),
    (*P3, "990001", "2140101", "示财预〔2025〕3号", 18, 0, 18, 0, 4.5, 4.5, 4.5, 4.5),
]


def _payment_row(p) -> list:
    voucher, date, (pro_code, pro_name), doc, func, (payee, acct), amount, use, status, original = p
    return [
        voucher,
        date,
        *AGENCY,
        pro_code,
        pro_name,
        doc,
        func,
        "30299",
        "一般公共预算资金",
        "国库集中支付",
        payee,
        acct,
        amount,
        use,
        status,
        original,
    ]


def write_samples(raw_dir: Path) -> list[Path]:
    """Write the four sample exports under raw_dir/{payments,refunds,budget}; returns their paths."""
    raw_dir = Path(raw_dir)
    for kind in ("payments", "refunds", "budget"):
        (raw_dir / kind).mkdir(parents=True, exist_ok=True)
    written = []

    wb = Workbook()
    ws = wb.active
    ws.title = "支付明细"
    ws.append([f"{AGENCY[1]}国库集中支付明细"])
    ws.append(["金额单位：元"])
    ws.append(PAYMENT_HEADER)
    for p in PAYMENTS_H1:
        ws.append(_payment_row(p))
        ws.cell(ws.max_row, 2).number_format = "yyyy-mm-dd"
        ws.cell(ws.max_row, 13).number_format = "@"
    ws.append(["合计"] + [""] * 12 + [sum(p[6] for p in PAYMENTS_H1)] + [""] * 3)
    path = raw_dir / "payments" / "payments_2025_01-06.xlsx"
    wb.save(path)
    written.append(path)

    path = raw_dir / "payments" / "payments_2025_06-07.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(PAYMENT_HEADER)
        for p in PAYMENTS_JUL:
            row = _payment_row(p)
            row[1] = row[1].isoformat()
            row[13] = f"{row[13]:,.2f}"
            w.writerow(row)
    written.append(path)

    wb = Workbook()
    ws = wb.active
    ws.title = "退回"
    ws.append(REFUND_HEADER)
    ws.append(["RF2025000011", "PV2025000104", "2025/8/2", 10000, "检测费结算退回"])
    path = raw_dir / "refunds" / "refunds_2025.xlsx"
    wb.save(path)
    written.append(path)

    wb = Workbook()
    ws = wb.active
    ws.title = "预算"
    ws.append([f"{AGENCY[1]}2025年项目预算表"])
    ws.append(BUDGET_HEADER)
    for row in BUDGET:
        ws.append(list(row))
    path = raw_dir / "budget" / "budget_2025.xlsx"
    wb.save(path)
    written.append(path)
    return written
