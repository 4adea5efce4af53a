"""The report routes' queries and answers (`/api/admin/reports/*`), as pydantic models.

Money and quantities are decimal strings (never floats), dates `YYYY-MM-DD`, as
`core.reports`' views write them.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from api.schemas import Answer, Id, Query
from core.reports import DEFAULT_LOW_STOCK_THRESHOLD, DEFAULT_STOCK_LIMIT

MONTH_PATTERN = "^[0-9]{4}-(0[1-9]|1[0-2])$"
_MONTH = re.compile(MONTH_PATTERN)


def _month_shape(value: str) -> str:
    # The shape only; whether the month is too early or in the future is core's to say.
    if not _MONTH.match(value):
        raise ValueError("must be in the form YYYY-MM, e.g. 2024-12")
    return value


Month = Annotated[
    str,
    AfterValidator(_month_shape),
    # The pattern is for the document; the validator says what is wrong in a sentence.
    Field(examples=["2024-12"], json_schema_extra={"pattern": MONTH_PATTERN}),
]
#: A low-stock threshold, in the stock columns' precision (`core.models.QUANTITY`).
Threshold = Annotated[
    Decimal,
    Field(ge=-(10**9), le=10**9, allow_inf_nan=False, max_digits=14, decimal_places=4),
]

DecimalText = Annotated[str, Field(description="a decimal number as text", examples=["1234.56"])]
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]


# -- queries ----------------------------------------------------------------------------
class CompanyQuery(Query):
    """The company a report is about."""

    companyId: Id


class SalesQuery(CompanyQuery):
    """A company's sales of one month (the current month in Brasília by default)."""

    month: Month | None = Field(
        None, description="YYYY-MM, not in the future; the current month in Brasília if absent"
    )


class BillsQuery(CompanyQuery):
    """A company's open payables or receivables."""

    kind: Literal["payables", "receivables"] = "payables"


class StockQuery(CompanyQuery):
    """A company's stock, lowest balance first."""

    threshold: Threshold = Field(
        DEFAULT_LOW_STOCK_THRESHOLD, description="a product at or under it is low"
    )
    limit: int = Field(DEFAULT_STOCK_LIMIT, ge=1, le=1000, description="products listed at most")


# -- answers ----------------------------------------------------------------------------
class DaySalesView(BaseModel):
    """Sales of one day."""

    date: Day
    orders: int
    total: DecimalText


class SalesView(Answer):
    """A month of sales, canceled orders excluded, one entry per calendar day."""

    month: str
    startDate: Day
    endDate: Day
    orders: int
    total: DecimalText
    averageTicket: DecimalText
    canceledOrders: int
    canceledTotal: DecimalText
    days: list[DaySalesView]


class DueDayView(BaseModel):
    """Open bills falling due on one day (`dueDate` null: bills without a due date)."""

    dueDate: Day | None
    count: int
    amount: DecimalText
    overdue: bool


class BillsView(Answer):
    """Open payables or receivables by due date; totals cover every bill, even past the cut."""

    kind: Literal["payables", "receivables"]
    today: Day
    count: int
    amount: DecimalText
    overdueCount: int
    overdueAmount: DecimalText
    truncated: bool
    dueDays: list[DueDayView]


class StockLineView(BaseModel):
    """One product's balance."""

    tinyId: int
    codigo: str | None
    nome: str | None
    unidade: str | None
    saldo: DecimalText
    reservado: DecimalText
    low: bool


class StockView(Answer):
    """Active products, lowest balance first; counts cover every product, even past the cut."""

    threshold: DecimalText
    products: int
    lowCount: int
    zeroCount: int
    truncated: bool
    lines: list[StockLineView]


class SalesAnswer(BaseModel):
    """A company's sales of a month."""

    success: Literal[True]
    companyId: str
    sales: SalesView


class BillsAnswer(BaseModel):
    """A company's open payables or receivables."""

    success: Literal[True]
    companyId: str
    bills: BillsView


class StockAnswer(BaseModel):
    """A company's stock."""

    success: Literal[True]
    companyId: str
    stock: StockView


class ReportsSummaryAnswer(BaseModel):
    """Everything the reports page shows for a company and month."""

    success: Literal[True]
    companyId: str
    sales: SalesView
    payables: BillsView
    receivables: BillsView
    stock: StockView
