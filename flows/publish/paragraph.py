"""The draft funds paragraph of one unit (资金情况说明): the same numbers and rounding as the workbook, every rate
written right after the two amounts it divides. Pure Python, no DuckDB: runs in the workbook workers."""

from __future__ import annotations

from decimal import Decimal

from flows.config import AlertSettings
from flows.formatting import fmt_wan
from flows.publish.unit import QUARTER_NAMES, UnitData


def _name(code: str | None, name: str | None) -> str:
    if name and code:
        return f"{name}（{code}）"
    return name or code or "—"


def fmt_rate_pct(pct: Decimal | None) -> str:
    """A rate the marts computed in percent (execution_rate_pct: 34.5) as text: "34.5%"; "—" when undefined."""
    return "—" if pct is None else f"{Decimal(pct):.1f}%"


def behind_thresholds(warning_pp: Decimal | None = None, critical_pp: Decimal | None = None) -> tuple[Decimal, Decimal]:
    """The behind-plan thresholds in percentage points: the configured ones, else the AlertSettings defaults (the
    one source for alerts, sheets and the paragraph)."""
    defaults = AlertSettings()
    return (
        Decimal(str(defaults.behind_warning_pp if warning_pp is None else warning_pp)),
        Decimal(str(defaults.behind_critical_pp if critical_pp is None else critical_pp)),
    )


def _funds_clause(budget_label: str, budget: Decimal, paid: Decimal, rate_label: str, pct: Decimal | None) -> str:
    """ "<budget_label> X 万元，支出 Y 万元，<rate_label> Z%": a rate always right after what it divides."""
    return f"{budget_label} {fmt_wan(budget)} 万元，支出 {fmt_wan(paid)} 万元，{rate_label} {fmt_rate_pct(pct)}"


def funds_paragraph(
    data: UnitData,
    *,
    behind_warning_pp: Decimal | None = None,
    behind_critical_pp: Decimal | None = None,
) -> str:
    """The draft funds paragraph (资金情况说明), from the same numbers and rounding as the workbook.

    Every rate is the marts' (execution_rate_pct, total_execution_rate_pct, gap_pp), written right after the two
    amounts it divides, so a reader can check it; the behind-plan thresholds are the configured ones."""
    warning_pp, _ = behind_thresholds(behind_warning_pp, behind_critical_pp)
    u = data.unit
    carry, paid_carry = u["carryover_amt"], u["paid_carryover"]
    as_of = data.as_of.isoformat()
    lines = [f"# 资金情况说明（草稿）：{data.agency_name} {data.fiscal_year} 年度，截至 {as_of}", ""]

    lines.append(
        f"{_name(data.agency_code, data.agency_name)}{data.fiscal_year}年度预算资金截至 {as_of} 的执行情况："
        + _funds_clause("当年财政拨款", u["cur_amt"], u["paid_current"], "执行率", u.get("execution_rate_pct"))
        + "（当年财政拨款支出 ÷ 全年预算数）；"
        + _funds_clause(
            "含上年结转的资金总额", u["total_amt"], u["paid_total"], "总体执行率", u.get("total_execution_rate_pct")
        )
        + f"；其中上年结转资金 {fmt_wan(carry)} 万元，已支出 {fmt_wan(paid_carry)} 万元。"
    )
    lines.append("")

    if data.projects:
        parts = []
        for p in data.projects:
            text = _name(p["pro_code"], p["pro_name"]) + _funds_clause(
                "当年财政拨款", p["cur_amt"], p["paid_current"], "执行率", p.get("execution_rate_pct")
            )
            if p["carryover_amt"] or p["paid_carryover"]:
                text += "，" + _funds_clause(
                    "含上年结转的资金总额",
                    p["total_amt"],
                    p["paid_total"],
                    "总体执行率",
                    p.get("total_execution_rate_pct"),
                )
            parts.append(text)
        lines.append("分项目看：" + "；".join(parts) + "。")
    else:
        lines.append("本年度没有项目预算。")
    lines.append("")

    if data.squeeze:
        items = [
            f"{_name(s['pro_code'], s['pro_name'])}凭证 {s['pay_cert_no']} {fmt_wan(s['amount'])} 万元，{s['evidence']}"
            for s in data.squeeze
        ]
        lines.append(
            f"结转挤占：共 {data.unit['squeeze_count']} 笔、合计 {fmt_wan(data.unit['squeeze_amt'])} 万元，"
            "以前年度支出占用了当年指标：" + "；".join(items) + "。"
        )
    else:
        lines.append("结转挤占：未发现以前年度支出占用当年指标。")
    lines.append("")

    unbudgeted = [x for x in data.exceptions if x["kind"] == "unbudgeted"]
    unbudgeted_amt = u["unbudgeted_amt"]
    if unbudgeted_amt or unbudgeted:
        items = []
        for x in unbudgeted:
            project = " ".join(filter(None, (x["pro_code"], x["pro_name"])))
            items.append(f"凭证 {x['pay_cert_no']} {fmt_wan(x['amount'])} 万元（项目 {project}）")
        lines.append(
            f"无预算支出：{fmt_wan(unbudgeted_amt)} 万元，未计入任何项目的执行数"
            + ("：" + "；".join(items) if items else "")
            + "。"
        )
    else:
        lines.append("无预算支出：无。")
    lines.append("")

    complete = [q for q in data.quarters if q["is_complete"]]
    if not complete:
        lines.append(f"用款计划进度：截至 {as_of} 尚无已结束的季度，未评价。")
    else:
        latest = max(q["quarter"] for q in complete)
        behind = []
        for q in data.behind:  # behind_plan, judged by the thresholds publish_outputs set on the session
            if q["quarter"] != latest:
                continue
            level = "（严重）" if q["severity"] == "critical" else ""
            behind.append(
                f"{_name(q['pro_code'], q['pro_name'])}全年预算 {fmt_wan(q['cur_amt'])} 万元，"
                f"累计计划 {fmt_wan(q['target_amt'])} 万元、累计支出 {fmt_wan(q['paid_cum'])} 万元，"
                f"落后 {q['gap_pp']:.2f} 个百分点{level}"
            )
        quarter = QUARTER_NAMES.get(latest, str(latest))
        basis = "（落后百分点 =（累计计划 − 累计支出）÷ 全年预算 × 100）"
        if behind:
            lines.append(
                f"用款计划进度：截至{quarter}末，{len(behind)} 个项目落后计划 {warning_pp} 个百分点以上{basis}："
                + "；".join(behind)
                + "。"
            )
        else:
            lines.append(f"用款计划进度：截至{quarter}末，没有项目落后用款计划 {warning_pp} 个百分点以上。")
    lines.append("")
    lines.append(
        f"（本段由 treasury-recon 根据截至 {as_of} 的数据生成，金额单位万元，四舍五入保留两位小数，"
        "与同目录的预算执行工作簿一致；发布前请核对。）"
    )
    return "\n".join(lines) + "\n"
