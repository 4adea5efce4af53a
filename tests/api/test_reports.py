"""The report routes (`/api/admin/reports/*`): documented, validated, and the same numbers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from core.models import Payable, Receivable, SalesOrder, StockItem
from core.reports import month_of, today_in_brazil
from tests.support.api import AUTH

REPORTS = "/api/admin/reports"
ROUTES = ["sales", "bills", "stock", "summary"]


@pytest.fixture
def books(api_services, company):
    """A company with a sale, a canceled order, an overdue payable, a receivable and stock."""
    today = today_in_brazil()
    with api_services.session_factory() as session:
        session.add_all(
            [
                SalesOrder(
                    companyId=company,
                    tinyId=1,
                    dataPedido=today,
                    valor=Decimal("10.05"),
                    situacao="Aprovado",
                ),
                SalesOrder(
                    companyId=company,
                    tinyId=2,
                    dataPedido=today,
                    valor=Decimal("99.00"),
                    situacao="Cancelado",
                ),
                Payable(
                    companyId=company,
                    tinyId=3,
                    dataVencimento=today - timedelta(days=2),
                    valor=Decimal("40.00"),
                    saldo=Decimal("15.50"),
                    situacao="parcial",
                ),
                Receivable(
                    companyId=company,
                    tinyId=4,
                    dataVencimento=today + timedelta(days=5),
                    valor=Decimal("70.10"),
                    situacao="aberto",
                ),
                StockItem(
                    companyId=company, tinyId=5, nome="Caneca", situacao="A", saldo=Decimal("2")
                ),
                StockItem(
                    companyId=company, tinyId=6, nome="Prato", situacao="A", saldo=Decimal("8.5")
                ),
            ]
        )
        session.commit()
    return company


def get(client, route, **query):
    return client.get(f"{REPORTS}/{route}", query_string=query, headers=AUTH)


def test_every_report_route_is_in_the_openapi_document_with_its_query(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for route in ROUTES:
        operation = paths[f"{REPORTS}/{route}"]["get"]
        assert operation["security"] == [{"adminToken": []}], route
        assert {"200", "400", "401", "403", "404"} <= set(operation["responses"]), route
        params = {p["name"]: p for p in operation["parameters"]}
        assert params["companyId"]["required"] is True, route
    sales = {p["name"]: p for p in paths[f"{REPORTS}/sales"]["get"]["parameters"]}
    assert "month" in sales and not sales["month"]["required"]
    bills = {p["name"]: p for p in paths[f"{REPORTS}/bills"]["get"]["parameters"]}
    assert bills["kind"]["schema"]["enum"] == ["payables", "receivables"]
    stock = {p["name"]: p for p in paths[f"{REPORTS}/stock"]["get"]["parameters"]}
    assert stock["limit"]["schema"]["minimum"] == 1
    assert stock["limit"]["schema"]["maximum"] == 1000


@pytest.mark.parametrize("route", ROUTES)
def test_every_report_route_needs_credentials(client, company, route):
    response = client.get(f"{REPORTS}/{route}", query_string={"companyId": company})
    assert response.status_code == 401
    assert response.get_json()["success"] is False


def test_the_reports_answer_the_synced_numbers_as_decimal_strings(client, books):
    sales = get(client, "sales", companyId=books).get_json()
    assert sales["success"] is True and sales["companyId"] == books
    assert sales["sales"]["month"] == month_of(today_in_brazil())
    assert sales["sales"]["orders"] == 1 and sales["sales"]["total"] == "10.05"
    assert sales["sales"]["canceledOrders"] == 1 and sales["sales"]["canceledTotal"] == "99.00"

    payables = get(client, "bills", companyId=books).get_json()["bills"]
    assert payables["kind"] == "payables"
    assert payables["amount"] == "15.50" and payables["overdueAmount"] == "15.50"
    receivables = get(client, "bills", companyId=books, kind="receivables").get_json()["bills"]
    assert receivables["amount"] == "70.10" and receivables["overdueCount"] == 0

    stock = get(client, "stock", companyId=books, threshold="3", limit="1").get_json()["stock"]
    assert stock["threshold"] == "3" and stock["products"] == 2 and stock["lowCount"] == 1
    assert [line["nome"] for line in stock["lines"]] == ["Caneca"] and stock["truncated"]


def test_the_summary_is_the_other_reports_in_one_document(client, books):
    summary = get(client, "summary", companyId=books).get_json()
    assert list(summary) == ["success", "companyId", "sales", "payables", "receivables", "stock"]
    assert summary["sales"] == get(client, "sales", companyId=books).get_json()["sales"]
    assert summary["payables"] == get(client, "bills", companyId=books).get_json()["bills"]
    receivables = get(client, "bills", companyId=books, kind="receivables").get_json()["bills"]
    assert summary["receivables"] == receivables
    assert summary["stock"] == get(client, "stock", companyId=books).get_json()["stock"]


def test_a_past_month_reports_that_month(client, books):
    sales = get(client, "sales", companyId=books, month="2024-02").get_json()["sales"]
    assert sales["startDate"] == "2024-02-01" and sales["endDate"] == "2024-02-29"
    assert len(sales["days"]) == 29 and sales["orders"] == 0 and sales["total"] == "0.00"


@pytest.mark.parametrize(
    ("route", "query", "status", "message"),
    [
        ("sales", {}, 400, "companyId is required"),
        ("summary", {}, 400, "companyId is required"),
        ("sales", {"companyId": "nope"}, 400, "companyId"),
        ("sales", {"companyId": "00000000-0000-0000-0000-000000000000"}, 404, "company"),
        ("sales", {"month": "2024-13"}, 400, "month must be in the form YYYY-MM, e.g. 2024-12"),
        ("summary", {"month": "12/2024"}, 400, "month must be in the form YYYY-MM"),
        ("sales", {"month": "2999-01"}, 400, "is in the future"),
        ("bills", {"kind": "invoices"}, 400, "kind must be 'payables' or 'receivables'"),
        ("stock", {"threshold": "abc"}, 400, "threshold must be a number"),
        ("stock", {"threshold": "NaN"}, 400, "threshold must be a finite number"),
        ("stock", {"threshold": "1e-999999999"}, 400, "threshold must have at most 14 digits"),
        ("stock", {"threshold": "2000000000"}, 400, "threshold must be at most 1000000000"),
        ("stock", {"limit": "0"}, 400, "limit must be at least 1"),
        ("stock", {"limit": "x"}, 400, "limit must be a whole number"),
    ],
)
def test_a_bad_query_is_refused_with_a_sentence(client, company, route, query, status, message):
    query = {"companyId": company, **query} if "companyId" not in query and query else query
    response = get(client, route, **query)
    assert response.status_code == status
    body = response.get_json()
    assert body["success"] is False
    assert message in body["error"]
