"""Synthetic exports at any scale, with a seed: `recon generate`.

Many units and projects, monthly payment rhythms (payroll on the 15th, more spending towards year end), refunds
(notices and inline negative vouchers), voided vouchers, payments to projects without a budget, prior-year
obligations paid from this year's quota (squeeze), carry-over money, a few bad rows, and payment exports whose
date windows overlap. Payment exports as GB18030 CSV and/or xlsx; budget sheets with a two-row header and a
quarterly plan; refund notices. Every name, code and account number is invented.

The same arguments and seed always give byte-identical CSV files.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flows.demo.samples import PAYMENT_HEADER as HEADER
from flows.demo.samples import REFUND_HEADER
from schemas.spec import export_header

REGIONS = ["示例", "城关", "东湖", "西山", "南岭", "北川", "清河", "白沙", "青石", "临江", "龙泉", "石门"]
DEPARTMENTS = [
    "交通运输综合行政执法大队",
    "公路事务中心",
    "教育局",
    "卫生健康局",
    "农业农村局",
    "水利局",
    "自然资源局",
    "住房和城乡建设局",
    "民政局",
    "文化和旅游局",
    "市场监督管理局",
    "生态环境局",
]
PROJECTS = [
    ("人员工资", "30101"),
    ("农村公路安保工程", "30905"),
    ("桥梁定期检测", "30227"),
    ("养护道班运行经费", "30299"),
    ("执法装备购置", "31002"),
    ("信息化系统运维", "30213"),
    ("办公楼维修改造", "30213"),
    ("培训经费", "30216"),
    ("专项调查", "30227"),
    ("公务用车运行维护", "30231"),
    ("绿化养护", "30299"),
    ("应急物资储备", "30218"),
]
PAYEES = [
    "路桥工程有限公司",
    "检测技术有限公司",
    "机电维修部",
    "信息技术有限公司",
    "建筑工程有限公司",
    "物业服务有限公司",
    "汽车租赁有限公司",
    "办公用品商行",
    "培训中心",
    "环境工程有限公司",
]
MONTH_WEIGHT = np.array([4, 5, 7, 7, 8, 9, 8, 8, 9, 10, 11, 14], dtype=float)


@dataclass
class Generated:
    payments: list[Path]
    refunds: list[Path]
    budget: list[Path]
    rows: int  # payment rows written, duplicates of overlapping windows included
    vouchers: int


def _money(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def generate(
    out_dir: Path,
    *,
    payments: int = 100_000,
    units: int = 20,
    projects_per_unit: int = 10,
    fiscal_year: int = 2025,
    seed: int = 1,
    formats: tuple[str, ...] = ("csv",),
    split: str = "quarterly",  # quarterly (overlapping windows) | none (one file)
    bad_rows: int = 5,
    start_no: int = 0,
    day: dt.date | None = None,  # one daily export of `payments` rows dated this day (an incremental night)
    write_budget: bool = True,
) -> Generated:
    """Write raw/payments, raw/refunds and raw/budget under out_dir."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    for kind in ("payments", "refunds", "budget"):
        (out_dir / kind).mkdir(parents=True, exist_ok=True)
    fy = fiscal_year
    unit_codes = [f"{900001 + u:06d}" for u in range(units)]
    unit_names = [
        f"{REGIONS[u % len(REGIONS)]}县{DEPARTMENTS[(u // len(REGIONS) + u) % len(DEPARTMENTS)]}" for u in range(units)
    ]
    npro = units * projects_per_unit
    pro_unit = np.repeat(np.arange(units), projects_per_unit)
    pro_idx = np.tile(np.arange(projects_per_unit), units)
    pro_codes = [f"{unit_codes[u]}{fy % 100:02d}{i + 1:04d}" for u, i in zip(pro_unit, pro_idx, strict=True)]
    pro_names = [
        PROJECTS[i % len(PROJECTS)][0] + ("" if i < len(PROJECTS) else f"（{i // len(PROJECTS) + 1}期）")
        for i in pro_idx
    ]
    # budgets in whole 0.01 万元 (100 yuan): 20-600 万元; a third of projects have carry-over money
    cur_wan100 = rng.integers(2_000, 60_000, npro)  # in 0.01 万元
    carry_wan100 = np.where(rng.random(npro) < 0.33, rng.integers(500, 15_000, npro), 0)
    plan_w = rng.dirichlet([2, 3, 3, 2], npro)
    plans = np.floor(plan_w * cur_wan100[:, None]).astype(np.int64)
    plans[:, 3] = cur_wan100 - plans[:, :3].sum(axis=1)
    if write_budget:
        budget_path = out_dir / "budget" / f"budget_{fy}.xlsx"
        _write_budget(
            budget_path, fy, unit_codes, unit_names, pro_unit, pro_codes, pro_names, cur_wan100, carry_wan100, plans
        )

    n = payments
    # which project: proportional to its budget; 0.2 % to projects without a budget line
    p_weight = (cur_wan100 + carry_wan100) / (cur_wan100 + carry_wan100).sum()
    proj = rng.choice(npro, size=n, p=p_weight)
    unbudgeted = rng.random(n) < 0.002
    # dates: payroll (project 0) on the 15th, the rest weighted towards year end
    if day is not None:
        dates = np.full(n, np.datetime64(day))
    else:
        month = rng.choice(12, size=n, p=MONTH_WEIGHT / MONTH_WEIGHT.sum())
        first = np.array([np.datetime64(f"{fy}-{m + 1:02d}-01") for m in range(12)])
        days_in = np.array(
            [(dt.date(fy + (m == 11), m % 12 + 2 if m < 11 else 1, 1) - dt.date(fy, m + 1, 1)).days for m in range(12)]
        )
        dates = first[month] + (rng.random(n) * days_in[month]).astype("timedelta64[D]")
        payroll = pro_idx[proj] == 0
        dates = np.where(payroll, first[month] + np.timedelta64(14, "D"), dates)
    order = np.argsort(dates, kind="stable")
    proj, unbudgeted, dates = proj[order], unbudgeted[order], dates[order]
    # amounts: the project's yearly spend (35-95 % of budget) spread over its payments, in fen
    share = rng.uniform(0.35, 0.95, npro)
    counts = np.bincount(proj, minlength=npro)
    mean_fen = np.where(counts > 0, (cur_wan100 + carry_wan100) * 1_000_000 // 100 * share / np.maximum(counts, 1), 0)
    amounts = np.maximum(100, (rng.gamma(2.0, 0.5, n) * mean_fen[proj])).astype(np.int64)
    amounts = np.where(rng.random(n) < 0.3, amounts // 100 * 100, amounts)  # many whole-yuan amounts
    carry = (carry_wan100[proj] > 0) & (rng.random(n) < 0.15)
    status = np.where(rng.random(n) < 0.005, "已作废", "已支付")
    squeeze = (~carry) & (rng.random(n) < 0.004)
    inline_refund = rng.random(n) < 0.001

    vouchers = [f"PV{fy}{start_no + i + 1:09d}" for i in range(n)]
    date_text = np.datetime_as_string(dates, unit="D").tolist()
    payee_i = rng.integers(0, len(PAYEES), n)
    acct = rng.integers(10**14, 10**15, n)
    rows = []
    for i in range(n):
        p = int(proj[i])
        u = int(pro_unit[p])
        code = pro_codes[p] if not unbudgeted[i] else f"{unit_codes[u]}{fy % 100:02d}9{p % 1000:03d}"
        name = pro_names[p] if not unbudgeted[i] else "临时支出"
        doc = f"示财预〔{fy - 1}〕{p % 90 + 10}号" if carry[i] else f"示财预〔{fy}〕{u % 50 + 1}号"
        use = f"{fy - 1}年度{name}尾款" if squeeze[i] else f"{name}{'工资' if pro_idx[p] == 0 else '支出'}"
        payee = f"{REGIONS[(u + int(payee_i[i])) % len(REGIONS)]}{PAYEES[int(payee_i[i])]}"
        amt = int(amounts[i])
        ori = ""
        if inline_refund[i] and i > 0:
            amt = -max(1, int(amounts[i - 1]) // 10)
            ori, code, name = vouchers[i - 1], rows[-1][4], rows[-1][5]
            use = "退回多付款项"
        rows.append(
            [
                vouchers[i],
                date_text[i],
                unit_codes[u],
                unit_names[u],
                code,
                name,
                doc,
                "2140106",
                PROJECTS[int(pro_idx[p]) % len(PROJECTS)][1],
                "一般公共预算资金",
                "国库集中支付",
                payee,
                f"6222{int(acct[i]):015d}",
                amt,
                use,
                status[i],
                ori,
            ]
        )
    for k in range(min(bad_rows, n)):  # a few bad rows: an impossible date, an amount that is not one
        j = int(rng.integers(0, n))
        if k % 2:
            rows[j][1] = f"{fy}-02-30"
        else:
            rows[j][13] = "12,34x.00"

    # overlapping export windows: each quarter's export also repeats the last 5 days of the previous quarter
    windows: list[tuple[str, list[list]]] = []
    if split == "quarterly" and day is None:
        bounds = [dt.date(fy, 1, 1), dt.date(fy, 4, 1), dt.date(fy, 7, 1), dt.date(fy, 10, 1), dt.date(fy + 1, 1, 1)]
        for q in range(4):
            lo = (bounds[q] - dt.timedelta(days=5 if q else 0)).isoformat()
            hi = bounds[q + 1].isoformat()
            windows.append((f"payments_{fy}_q{q + 1}", [r for r in rows if lo <= r[1] < hi]))
    else:
        label = f"payments_{day.isoformat()}" if day else f"payments_{fy}"
        windows.append((label, rows))
    written: list[Path] = []
    total_rows = 0
    for label, part in windows:
        total_rows += len(part)
        if "csv" in formats:
            path = out_dir / "payments" / f"{label}.csv"
            _write_payments_csv(path, part, fy)
            written.append(path)
        if "xlsx" in formats:
            path = out_dir / "payments" / f"{label}.xlsx"
            _write_payments_xlsx(path, part, fy)
            written.append(path)

    refund_paths = []
    if day is None:
        picks = rng.choice(n, size=max(1, n // 300), replace=False)
        refunds = []
        for k, j in enumerate(sorted(picks)):
            if rows[j][13] is None or not isinstance(rows[j][13], int) or rows[j][13] <= 0:
                continue
            paid = dt.date.fromisoformat(rows[j][1]) if rows[j][1][5:7] != "02" or rows[j][1][8:] < "29" else None
            if paid is None:
                continue
            when = min(paid + dt.timedelta(days=int(rng.integers(5, 60))), dt.date(fy, 12, 31))
            refunds.append(
                [f"RF{fy}{k + 1:07d}", rows[j][0], when.isoformat(), _money(max(1, rows[j][13] // 20)), "结算退回"]
            )
        path = out_dir / "refunds" / f"refunds_{fy}.csv"
        with path.open("w", encoding="gb18030", newline="") as f:
            w = csv.writer(f)
            w.writerow(["国库集中支付资金退回通知书"])
            w.writerow(REFUND_HEADER)
            w.writerows(refunds)
        refund_paths.append(path)
    budget_paths = [out_dir / "budget" / f"budget_{fy}.xlsx"] if write_budget else []
    return Generated(written, refund_paths, budget_paths, total_rows, n)


def _write_payments_csv(path: Path, rows: list[list], fy: int) -> None:
    total = sum(r[13] for r in rows if isinstance(r[13], int))
    with path.open("w", encoding="gb18030", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"国库集中支付明细查询（{fy}年）"])
        w.writerow(["金额单位：元"])
        w.writerow(HEADER)
        w.writerows([*r[:13], _money(r[13]) if isinstance(r[13], int) else r[13], *r[14:]] for r in rows)
        w.writerow(["合计"] + [""] * 12 + [_money(total)] + [""] * 3)


def _write_payments_xlsx(path: Path, rows: list[list], fy: int) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("支付明细")
    ws.append([f"国库集中支付明细查询（{fy}年）"])
    ws.append(["金额单位：元"])
    ws.append(HEADER)
    total = 0
    for r in rows:
        amount = r[13] / 100 if isinstance(r[13], int) else r[13]
        total += r[13] if isinstance(r[13], int) else 0
        ws.append([*r[:13], amount, *r[14:]])
    ws.append(["合计"] + [None] * 12 + [total / 100])
    wb.save(path)


def _write_budget(path, fy, unit_codes, unit_names, pro_unit, pro_codes, pro_names, cur, carry, plans) -> None:
    """One sheet, amounts in 万元, a two-row header with 分季度用款计划 merged over the quarters, a totals row."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "项目预算"
    ws.append([f"{fy}年项目预算及分季度用款计划"])
    ws.append(["金额单位：万元"])
    top = [
        *export_header(
            "budget", "pro_code pro_name agency_code agency_name bgt_doc_no reply_amt adj_amt cur_amt 上年结转数"
        ),
        "分季度用款计划",
        *[None] * 3,
    ]
    ws.append(top)
    ws.append([None] * 9 + export_header("budget", "plan_q1 plan_q2 plan_q3 plan_q4"))
    ws.merge_cells(start_row=3, start_column=10, end_row=3, end_column=13)
    for c in range(1, 10):
        ws.merge_cells(start_row=3, start_column=c, end_row=4, end_column=c)
    for p, code in enumerate(pro_codes):
        u = int(pro_unit[p])
        adj = 0 if p % 7 else 500  # some adjustments (+5 万元)
        reply = int(cur[p]) - adj
        plan = plans[p].tolist()
        plan[3] += 0  # plans are for cur_amt
        ws.append(
            [
                code,
                pro_names[p],
                unit_codes[u],
                unit_names[u],
                f"示财预〔{fy}〕{u % 50 + 1}号",
                reply / 100,
                adj / 100,
                int(cur[p]) / 100,
                int(carry[p]) / 100,
                *[v / 100 for v in plan],
            ]
        )
    ws.append(
        [
            "合计",
            None,
            None,
            None,
            None,
            int(cur.sum() - sum(500 for p in range(len(pro_codes)) if p % 7 == 0)) / 100,
            None,
            int(cur.sum()) / 100,
        ]
    )
    wb.save(path)
