"""The HTML pages: the reports of a company with its sync controls, the run history, a run.

Pages are rendered on the server from `core` (reports, runs, companies); the browser-side
script only drives a run through the JSON API (create, start, step, status, cancel). A query
argument a page cannot use is reported on the page (or answered 400/404), never a 500.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from pydantic import TypeAdapter
from pydantic import ValidationError as ModelValidationError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from api.run_views import log_view, progress_view, run_summary
from api.schemas_reports import Threshold
from api.state import services
from api.ui.auth import login_required
from api.ui.format import month_label, month_options
from core.companies import company_view, get_company, list_companies
from core.errors import NotFoundError, ValidationError
from core.models import Company
from core.modules import MODULE_KEYS
from core.reports import (
    DEFAULT_LOW_STOCK_THRESHOLD,
    month_of,
    open_bills_report,
    sales_report,
    sales_view,
    stock_report,
    today_in_brazil,
)
from core.runs import (
    RunStatus,
    active_run_id,
    get_run,
    list_logs,
    list_runs,
    parse_month,
    run_window,
)
from core.runs.model import Verification
from core.wording import MODULE_LABELS, verified_summary

HISTORY_PAGE_SIZE = 25
LOG_PAGE_SIZE = 100
_THRESHOLD: TypeAdapter[Decimal] = TypeAdapter(Threshold)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def page_headers(response: Response) -> Response:
    """Headers that keep the pages from being framed, sniffed, or kept in a cache."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"  # pages carry the CSRF token
    return response


def error_page(error: HTTPException) -> Any:
    """A page's refusal (400, 404) as a page, in Portuguese."""
    if error.response is not None:  # built by who raised it (the throttle's 429 page)
        return error.response
    status = error.code or 500
    return render_template("ui/error.html", status=status, message=error.description), status


def home() -> Any:
    """The reports page is the home page."""
    return redirect(url_for("ui.reports"))


@login_required
def reports() -> Any:
    """Reports of one company, with the sync controls and the progress modal."""
    settings = services().settings
    today = today_in_brazil()
    month, month_error = _reports_month(request.args.get("month"), today)
    notices = [month_error] if month_error else []
    try:
        low_stock = _low_stock(request.args.get("lowStock"))
    except ModelValidationError:
        low_stock = DEFAULT_LOW_STOCK_THRESHOLD
        notices.append("Saldo baixo inválido: usando o padrão.")
    with services().session_factory() as db:
        companies = list_companies(db)
        company = _pick_company(db, companies, request.args.get("companyId"))
        context: dict[str, Any] = {
            "companies": [company_view(c) for c in companies],
            "company": company_view(company) if company else None,
            "month": month,
            "month_label": month_label(month),
            "max_month": month_of(today),
            "month_options": month_options(month_of(today), also=month),
            "active_mode": None,
            "active_month": None,
            "notices": notices,
            "today": today,
            "executor": settings.executor,
            "incremental_days": settings.sync_incremental_days,
            "modules": [(key, MODULE_LABELS[key]) for key in MODULE_KEYS],
        }
        if company is not None:
            sales = sales_report(db, company.id, month, today=today)
            context.update(
                sales=sales,
                sales_json=sales_view(sales),
                payables=open_bills_report(db, company.id, "payables", today=today),
                receivables=open_bills_report(db, company.id, "receivables", today=today),
                stock=stock_report(db, company.id, threshold=low_stock),
                last_run=_last_finished_run(db, company.id),
                active_run_id=active_run_id(db, company.id),
            )
            if context["active_run_id"]:  # a reload mid-run shows the run's own mode
                active = get_run(db, context["active_run_id"])
                context["active_mode"] = active.mode
                context["active_month"] = month_of(run_window(active).start)
    return render_template("ui/reports.html", **context)


@login_required
def history() -> Any:
    """Runs, newest first, optionally of one company and status; paged by cursor."""
    company_id = request.args.get("companyId") or None
    status = request.args.get("status") or None
    before = request.args.get("before") or None
    with services().session_factory() as db:
        companies = {c.id: c.name for c in list_companies(db)}
        try:
            runs, next_cursor = list_runs(
                db, company_id=company_id, status=status, limit=HISTORY_PAGE_SIZE, before=before
            )
        except ValidationError:
            abort(400, description="Filtro inválido.")
        rows = [run_summary(run) for run in runs]
    return render_template(
        "ui/history.html",
        runs=rows,
        companies=companies,
        company_id=company_id,
        status=status,
        next_cursor=next_cursor,
        first_page=before is None,
    )


@login_required
def run_detail(run_id: str) -> Any:
    """One run: its summary, its modules and its full log (paged, newest first)."""
    before = request.args.get("before") or None
    with services().session_factory() as db:
        try:
            run = get_run(db, run_id)
            logs, next_cursor = list_logs(db, run.id, limit=LOG_PAGE_SIZE, before=before)
        except (ValidationError, NotFoundError):
            abort(404, description="Execução não encontrada.")
        summary = run_summary(run)
        modules = progress_view(run)["modules"]
        company = db.get(Company, run.companyId)
    return render_template(
        "ui/run.html",
        run=summary,
        in_progress=not RunStatus(run.status).is_final,
        company_name=company.name if company else run.companyId,
        modules=[(key, MODULE_LABELS.get(key, key), modules.get(key, {})) for key in MODULE_KEYS],
        verified={
            key: verified_summary(Verification.from_json(entry["verified"]))
            for key, entry in modules.items()
            if entry.get("verified")
        },
        logs=[log_view(entry) for entry in logs],
        next_cursor=next_cursor,
        first_page=before is None,
    )


def _pick_company(db: Session, companies: list[Company], wanted: str | None) -> Company | None:
    if wanted:
        try:
            return get_company(db, wanted)
        except (ValidationError, NotFoundError):
            abort(404, description="Empresa não encontrada.")
    # The first active company by name, else the first one, else none at all.
    ranked = sorted(companies, key=lambda c: not c.active)
    return ranked[0] if ranked else None


def _last_finished_run(db: Session, company_id: str) -> dict[str, Any] | None:
    runs, _ = list_runs(db, company_id=company_id, limit=10)
    for run in runs:
        if RunStatus(run.status).is_final:
            return run_summary(run)
    return None


def _reports_month(value: str | None, today: date) -> tuple[str, str | None]:
    if not value:
        return month_of(today), None
    try:
        window = parse_month(value, today)
    except ValidationError:
        return month_of(today), f"Mês inválido: {value}. Mostrando o mês atual."
    return month_of(window.start), None


def _low_stock(raw: str | None) -> Decimal:
    # The same rule as the stock route's `threshold` (api.schemas.Threshold).
    if raw is None or raw == "":
        return DEFAULT_LOW_STOCK_THRESHOLD
    return _THRESHOLD.validate_python(raw)
