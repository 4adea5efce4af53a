"""The report data as JSON: `/api/admin/reports/*`, the numbers the reports page shows.

Each route validates its query, calls the `core.reports` functions and answers their views;
the month defaults to the current one in Brasília, the calendar of Tiny's dates.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.openapi import ADMIN, ADMIN_ERRORS, answers, spec
from api.schemas_reports import (
    BillsAnswer,
    BillsQuery,
    ReportsSummaryAnswer,
    SalesAnswer,
    SalesQuery,
    StockAnswer,
    StockQuery,
)
from api.state import services
from core.companies import get_company
from core.reports import (
    month_of,
    open_bills_report,
    open_bills_view,
    sales_report,
    sales_view,
    stock_report,
    stock_view,
    today_in_brazil,
)

bp = Blueprint("reports", __name__, url_prefix="/api/admin/reports")
TAGS = ["reports"]


@bp.get("/sales")
@spec.validate(
    query=SalesQuery, resp=answers(SalesAnswer, *ADMIN_ERRORS, 404), tags=TAGS, security=ADMIN
)
def sales(query: SalesQuery) -> Response:
    """Sales per day of a month with totals and average ticket."""
    today = today_in_brazil()
    with services().session_factory() as session:
        company = get_company(session, query.companyId)
        report = sales_report(session, company.id, query.month or month_of(today), today=today)
    return jsonify(success=True, companyId=company.id, sales=sales_view(report))


@bp.get("/bills")
@spec.validate(
    query=BillsQuery, resp=answers(BillsAnswer, *ADMIN_ERRORS, 404), tags=TAGS, security=ADMIN
)
def bills(query: BillsQuery) -> Response:
    """Open payables or receivables (`kind`) by due date, overdue flagged."""
    with services().session_factory() as session:
        company = get_company(session, query.companyId)
        report = open_bills_report(session, company.id, query.kind, today=today_in_brazil())
    return jsonify(success=True, companyId=company.id, bills=open_bills_view(report))


@bp.get("/stock")
@spec.validate(
    query=StockQuery, resp=answers(StockAnswer, *ADMIN_ERRORS, 404), tags=TAGS, security=ADMIN
)
def stock(query: StockQuery) -> Response:
    """Stock balances, lowest first, low ones flagged."""
    with services().session_factory() as session:
        company = get_company(session, query.companyId)
        report = stock_report(session, company.id, threshold=query.threshold, limit=query.limit)
    return jsonify(success=True, companyId=company.id, stock=stock_view(report))


@bp.get("/summary")
@spec.validate(
    query=SalesQuery,
    resp=answers(ReportsSummaryAnswer, *ADMIN_ERRORS, 404),
    tags=TAGS,
    security=ADMIN,
)
def summary(query: SalesQuery) -> Response:
    """Everything the reports page shows for a company and month, in one document."""
    today = today_in_brazil()
    with services().session_factory() as session:
        company = get_company(session, query.companyId)
        month = query.month or month_of(today)
        return jsonify(
            success=True,
            companyId=company.id,
            sales=sales_view(sales_report(session, company.id, month, today=today)),
            payables=open_bills_view(
                open_bills_report(session, company.id, "payables", today=today)
            ),
            receivables=open_bills_view(
                open_bills_report(session, company.id, "receivables", today=today)
            ),
            stock=stock_view(stock_report(session, company.id)),
        )
