"""Names the whole pipeline shares: canonical input fields with their
built-in header aliases (金蝶 / 用友 / SAP), and the catalogue of metrics.

Config refers to fields and metrics by these keys or by their Chinese labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["text", "code", "number", "date"]


@dataclass(frozen=True)
class InputField:
    """A canonical column of an export, with the headers real ERPs use for it."""

    key: str
    label: str
    kind: FieldKind
    aliases: tuple[str, ...]


def _f(key: str, label: str, kind: FieldKind, *aliases: str) -> InputField:
    return InputField(key, label, kind, (label, *aliases))


SALES_FIELDS: tuple[InputField, ...] = (
    _f("doc_no", "单据编号", "code", "单据号", "发货单号", "销售订单号", "出库单号", "订单号",
       "凭证号", "销售凭证", "Sales Document", "单号", "发票号", "发票号码",
       "Invoice No", "InvoiceNo", "Invoice Number", "Invoice", "Invoice ID", "Inv No",
       "Order No", "Order Number", "Order ID", "OrderID", "Order", "Sales Order", "SO Number",
       "Document No", "Document Number", "Doc No", "Billing Document", "Bill No", "Voucher No",
       "Transaction ID", "Receipt No"),
    _f("date", "单据日期", "date", "日期", "业务日期", "发货日期", "出库日期", "开票日期",
       "凭证日期", "Document Date", "订单日期", "Date", "Invoice Date", "InvoiceDate", "Order Date",
       "OrderDate", "Posting Date", "Billing Date", "Transaction Date", "Sales Date", "Ship Date"),
    _f("customer_code", "客户编码", "code", "客户代码", "客户编号", "往来单位编码", "购货单位代码",
       "售达方", "Sold-To Party", "客户号", "客户ID", "Customer ID", "CustomerID", "Customer No",
       "Customer Number", "Customer Code", "Cust ID", "Cust No", "Customer Account", "Account No",
       "Account Number", "Client ID", "Sold-To", "Sold-to Party Number", "Debtor"),
    _f("customer_name", "客户名称", "text", "客户", "客户简称", "往来单位", "购货单位", "名称 1",
       "Name 1", "客户全称", "Customer", "Customer Name", "CustomerName", "Client", "Client Name",
       "Company", "Company Name", "Account Name", "Sold-To Name"),
    _f("item", "物料编码", "code", "物料代码", "产品代码", "存货编码", "物料", "Material", "商品编码",
       "StockCode", "Stock Code", "Item", "Item Code", "Item No", "SKU", "Product Code", "Product ID",
       "Product"),
    _f("quantity", "数量", "number", "实发数量", "订单数量", "Order Quantity", "销售数量", "Quantity", "Qty",
       "Billed Quantity", "Units", "Quantity Ordered"),
    _f("unit_price", "单价", "number", "含税单价", "销售单价", "Unit Price", "UnitPrice", "Price",
       "Price Each", "Sales Price"),
    _f("discount_rate", "折扣率", "text", "扣率", "Discount Rate", "Discount %", "Disc %"),
    _f("discount_amount", "折扣额", "number", "折扣金额", "Discount Amount", "Discount"),
    _f("amount", "价税合计", "number", "本币价税合计", "含税金额", "销售金额", "金额(含税)",
       "含税销售额", "价税合计(本位币)", "Amount", "Total", "Sales", "Sales Amount", "Gross Amount",
       "Line Total", "Total Amount", "Invoice Amount", "Revenue", "Gross Value", "Amount incl Tax"),
    _f("amount_excl_tax", "无税金额", "number", "本币无税金额", "不含税金额", "金额", "净价值",
       "Net Value", "销售额", "Net Amount", "Net Sales", "Amount excl Tax", "Net Revenue"),
    _f("cost", "成本", "number", "销售成本", "成本金额", "本币成本", "Cost", "COGS", "Cost of Sales",
       "Total Cost"),
    _f("salesperson", "业务员", "text", "销售员", "销售人员", "业务员名称", "销售组", "Sales Group",
       "Salesperson", "Sales Person", "Sales Rep", "Sales Representative", "Sales Employee", "Rep",
       "Account Manager"),
    _f("department", "部门", "text", "销售部门", "部门名称", "Department", "Dept", "Sales Office",
       "Division"),
    _f("region", "地区", "text", "区域", "销售区域", "所属地区", "Region", "Sales Region", "Country",
       "Territory", "Area"),
)

RECEIVABLE_FIELDS: tuple[InputField, ...] = (
    _f("customer_code", "客户编码", "code", "客户代码", "客户编号", "往来单位编码", "往来单位代码",
       "客户号", "Customer ID", "CustomerID", "Customer No", "Customer Number", "Customer Code",
       "Account No", "Account Number", "Customer Account", "Debtor"),
    _f("customer_name", "客户名称", "text", "客户", "往来单位", "往来单位名称", "客户简称", "Customer",
       "Customer Name", "Account Name", "Debtor Name"),
    _f("opening", "期初余额", "number", "期初", "年初余额", "期初应收", "Opening Balance", "Beginning Balance",
       "Opening"),
    _f("billed", "本期应收", "number", "本期借方", "本期发生/本期应收", "本期增加", "借方发生额", "Debit",
       "Billed", "Invoiced", "Invoiced Amount"),
    _f("received", "本期收回", "number", "本期收款", "本期贷方", "本期发生/本期收回", "本期减少",
       "贷方发生额", "本期回款", "Credit", "Received", "Payments", "Collected"),
    _f("closing", "期末余额", "number", "期末应收", "应收余额", "余额", "Closing Balance", "Ending Balance",
       "Balance", "Balance Due"),
    _f("overdue_days", "逾期天数", "number", "最长逾期天数", "最大逾期天数", "超期天数", "账龄天数",
       "Days Overdue", "Overdue Days", "Days Past Due"),
    _f("aging_days", "账龄", "number", "账龄(天)", "最长账龄", "账龄天数(最长)", "Aging Days", "Age (Days)"),
    _f("date", "日期", "date", "单据日期", "业务日期", "Date", "Posting Date", "Document Date"),
    _f("overdue_amount", "逾期金额", "number", "超期金额", "逾期应收", "已逾期金额", "逾期余额", "Overdue Amount",
       "Past Due Amount"),
    # an aging export: the balance split into age buckets (账龄分析表)
    _f("aging_0_30", "0-30天", "number", "1-30天", "0~30天", "0至30天", "30天以内", "30天内", "1个月以内",
       "账龄0-30天", "0-30 Days", "1-30 Days"),
    _f("aging_31_60", "31-60天", "number", "30-60天", "31~60天", "31至60天", "1-2个月", "账龄31-60天", "31-60 Days"),
    _f("aging_61_90", "61-90天", "number", "60-90天", "61~90天", "61至90天", "2-3个月", "账龄61-90天", "61-90 Days"),
    _f("aging_91_180", "91-180天", "number", "90-180天", "91~180天", "91至180天", "3-6个月", "账龄91-180天",
       "91-180 Days"),
    _f("aging_over_180", "180天以上", "number", "181天以上", ">180天", "180天以上(含)", "6个月以上", "半年以上",
       "账龄180天以上", "超过180天", "Over 180 Days", "180+ Days"),
)

AGING_BUCKETS: tuple[tuple[str, str, float], ...] = (  # field, label, upper bound in days
    ("aging_0_30", "0-30天", 30), ("aging_31_60", "31-60天", 60), ("aging_61_90", "61-90天", 90),
    ("aging_91_180", "91-180天", 180), ("aging_over_180", "180天以上", float("inf")),
)

CUSTOMER_FIELDS: tuple[InputField, ...] = (
    _f("customer_code", "客户编码", "code", "客户代码", "客户编号", "往来单位编码", "Customer ID", "CustomerID",
       "Customer No", "Customer Number", "Customer Code", "Account No", "Account Number"),
    _f("customer_name", "客户名称", "text", "客户", "客户全称", "往来单位", "Customer", "Customer Name",
       "Company", "Company Name", "Account Name"),
    _f("salesperson", "业务员", "text", "销售员", "专管业务员", "Salesperson", "Sales Rep", "Account Manager"),
    _f("region", "地区", "text", "区域", "所属地区", "销售区域", "Region", "Country", "Territory", "Area"),
    _f("category", "客户分类", "text", "客户类别", "分类", "Customer Group", "Category", "Segment"),
)

OVERRIDE_FIELDS: tuple[InputField, ...] = (
    _f("customer_code", "客户编码", "code", "客户代码", "客户编号", "Customer ID", "Customer Code"),
    _f("customer_name", "客户名称", "text", "客户", "Customer", "Customer Name"),
    _f("grade", "指定等级", "code", "等级", "人工等级", "调整后等级", "Grade"),
    _f("reason", "原因", "text", "指定原因", "调整原因", "说明", "Reason"),
    _f("by", "指定人", "text", "审批人", "经理", "负责人", "Approved By"),
    _f("until", "有效期至", "date", "到期日", "截止日期", "失效日期", "Valid Until"),
)

# The 评审 columns at the end of the main table of an earlier output (issue 13: review round trip).
REVIEW_FIELDS: tuple[InputField, ...] = (
    _f("customer_code", "客户编码", "code", "客户代码", "客户编号"),
    _f("customer_name", "客户名称", "text"),
    _f("grade", "建议等级", "code"),
    _f("reason", "理由", "text", "评审理由"),
    _f("by", "审批人", "text"),
    _f("approved_on", "审批日期", "date"),
    _f("until", "有效至", "date"),
    _f("status", "状态", "text", "评审状态"),
)

SOURCE_FIELDS: dict[str, tuple[InputField, ...]] = {
    "sales": SALES_FIELDS,
    "receivables": RECEIVABLE_FIELDS,
    "customers": CUSTOMER_FIELDS,
    "overrides": OVERRIDE_FIELDS,
    "reviews": REVIEW_FIELDS,
}

# Fields a source cannot do without (customer_code may be satisfied by customer_name).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "sales": ("customer_code", "date", "amount"),
    "receivables": ("customer_code",),
    "customers": ("customer_code",),
    "overrides": ("customer_code", "grade", "reason", "by"),
    "reviews": ("customer_code", "status"),
}

SOURCE_LABELS = {"sales": "销售明细", "receivables": "应收账款余额表", "customers": "客户档案",
                 "overrides": "人工指定等级表", "reviews": "评审表"}

MetricKind = Literal["money", "count", "ratio", "days", "months", "date", "score"]


@dataclass(frozen=True)
class Metric:
    """A per-customer number the grader can use."""

    key: str
    label: str
    kind: MetricKind


METRICS: tuple[Metric, ...] = (
    Metric("net_sales", "净销售额", "money"),
    Metric("gross_sales", "销售额(不含退货)", "money"),
    Metric("returns", "退货额", "money"),
    Metric("order_count", "订单数", "count"),
    Metric("line_count", "明细行数", "count"),
    Metric("active_months", "活跃月数", "count"),
    Metric("avg_order_value", "平均订单金额", "money"),
    Metric("first_order_date", "首次下单日期", "date"),
    Metric("last_order_date", "最近下单日期", "date"),
    Metric("recency_days", "未下单天数", "days"),
    Metric("tenure_months", "合作月数", "months"),
    Metric("gross_profit", "毛利", "money"),
    Metric("margin", "毛利率", "ratio"),
    Metric("opening", "期初余额", "money"),
    Metric("billed", "本期应收", "money"),
    Metric("received", "本期收回", "money"),
    Metric("closing", "期末余额", "money"),
    Metric("collection_rate", "回款率", "ratio"),
    Metric("overdue_days", "逾期天数", "days"),
)

METRIC_BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}
METRIC_BY_LABEL: dict[str, Metric] = {m.label: m for m in METRICS}


def resolve_metric(name: str) -> Metric | None:
    """Find a metric by key (net_sales) or Chinese label (净销售额)."""
    return METRIC_BY_KEY.get(name) or METRIC_BY_LABEL.get(name.strip())
