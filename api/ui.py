"""The web UI: sign-in, the reports page with its sync controls and progress modal, history.

Pages are rendered on the server from `core` (reports, runs, companies); the browser-side
script only drives a run through the JSON API (create, start, step, status, cancel). The
browser signs in by exchanging the admin token for a session cookie; the API's auth layer
accepts that session and checks `session["csrf"]` in the `X-CSRF-Token` header of writes.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from api.run_views import log_view, progress_view, run_summary
from core.companies import company_view, get_company, list_companies
from core.errors import NotFoundError, ValidationError
from core.models import Company
from core.modules import MODULE_KEYS
from core.reports import (
    BRASILIA,
    DEFAULT_LOW_STOCK_THRESHOLD,
    DEFAULT_STOCK_LIMIT,
    month_of,
    open_bills_report,
    open_bills_view,
    sales_report,
    sales_view,
    stock_report,
    stock_view,
    today_in_brazil,
)
from core.runs import (
    RunStatus,
    active_run_id,
    get_run,
    list_logs,
    list_runs,
    parse_month,
)
from core.services import Services

bp = Blueprint(
    "ui",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ui/static",
)

MODULE_LABELS: dict[str, str] = {
    "vw_vendas": "Vendas",
    "vw_contas_receber_posicao": "Contas a receber (posição)",
    "vw_contas_pagar": "Contas a pagar",
    "vw_contas_pagas": "Contas pagas",
    "vw_contas_recebidas": "Contas recebidas",
    "vw_estoque": "Estoque",
}
RUN_STATUS_LABELS: dict[str, str] = {
    "QUEUED": "Na fila",
    "RUNNING": "Em execução",
    "DONE": "Concluída",
    "FAILED": "Falhou",
    "CANCELED": "Cancelada",
}
MODULE_STATUS_LABELS: dict[str, str] = {
    "pending": "Aguardando",
    "running": "Em execução",
    "done": "Concluído",
    "failed": "Falhou",
    "canceled": "Cancelado",
}
MODE_LABELS = {"incremental": "Rápido", "period": "Por período"}
MONTH_NAMES = (
    "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro"
).split()
HISTORY_PAGE_SIZE = 25
LOG_PAGE_SIZE = 100

F = TypeVar("F", bound=Callable[..., Any])


# -- app configuration ------------------------------------------------------------------
@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    app = state.app
    # The factory signs the session (SECRET_KEY); the cookie must stay HttpOnly, and
    # SameSite=Lax keeps it off cross-site POSTs, the first line against CSRF.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.jinja_env.filters.update(
        brl=format_brl,
        number=format_number,
        day=format_day,
        moment=format_moment,
        duration=format_duration,
    )


def _services() -> Services:
    return cast(Services, current_app.extensions["tinysync"])


@contextmanager
def _db() -> Iterator[Session]:
    with _services().session_factory() as db:
        yield db


# -- formatting (Brazilian Portuguese) --------------------------------------------------
def _grouped(value: Decimal, places: int) -> str:
    text = f"{value:,.{places}f}"  # 1,234.56
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def format_brl(value: Any) -> str:
    """R$ 1.234,56"""
    amount = Decimal(str(value or 0))
    sign = "-" if amount < 0 else ""
    return f"{sign}R$\u00a0{_grouped(abs(amount), 2)}"


def format_number(value: Any) -> str:
    """1.234 or 12,5 (a quantity without trailing zeros)."""
    amount = Decimal(str(value or 0))
    if amount == amount.to_integral_value():
        return _grouped(amount, 0)
    places = max(0, -amount.normalize().as_tuple().exponent)  # type: ignore[operator]
    return _grouped(amount, min(int(places), 4))


def format_day(value: date | str | None) -> str:
    """29/11/2026"""
    if value is None or value == "":
        return "—"
    day = date.fromisoformat(value[:10]) if isinstance(value, str) else value
    return day.strftime("%d/%m/%Y")


def format_moment(value: datetime | str | None) -> str:
    """29/11/2026 12:13, in Brasília time."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BRASILIA).strftime("%d/%m/%Y %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """1 min 05 s"""
    if seconds is None:
        return "—"
    total = int(round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def month_label(month: str) -> str:
    """`2026-11` → `novembro de 2026`"""
    year, number = month.split("-")
    return f"{MONTH_NAMES[int(number) - 1]} de {year}"


# -- sign-in ----------------------------------------------------------------------------
def signed_in() -> bool:
    """Whether this browser session holds the admin sign-in."""
    return session.get("admin") is True and bool(session.get("csrf"))


def login_required(view: F) -> F:
    """Send a visitor who has not signed in to the sign-in page, then back here."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not signed_in():
            return redirect(url_for("ui.sign_in", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapper)


def _safe_next(target: str | None) -> str:
    # Only paths on this site: no scheme, no host, no "//evil" or "/\evil".
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("ui.reports")


def _same_origin_request() -> bool:
    """False when the browser says this request came from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:  # an older browser or a script: the form token still has to match
        return True
    # Hosts, not schemes: behind a proxy that ends TLS the app itself sees plain http.
    return urlsplit(origin).netloc == request.host


def _form_token_matches(key: str) -> bool:
    expected = session.get(key)
    given = request.form.get("csrf", "")
    return bool(expected) and hmac.compare_digest(str(expected), given)


@bp.get("/entrar")
def sign_in() -> Any:
    """The sign-in form (or straight on when already signed in)."""
    if signed_in():
        return redirect(_safe_next(request.args.get("next")))
    # The form carries a token bound to this browser's (pre-sign-in) session: a page on
    # another site can neither read it nor, with SameSite=Lax, send our cookie along.
    session.setdefault("login_csrf", secrets.token_urlsafe(32))
    return _sign_in_page()


def _sign_in_page(error: str | None = None, status: int = 200) -> Any:
    body = render_template(
        "ui/sign_in.html",
        error=error,
        next=request.values.get("next", ""),
        login_csrf=session.get("login_csrf", ""),
        token_configured=bool(_services().settings.sync_admin_token),
    )
    return body, status


@bp.post("/entrar")
def sign_in_post() -> Any:
    """Exchange the admin token for a session."""
    if not _same_origin_request() or not _form_token_matches("login_csrf"):
        session["login_csrf"] = secrets.token_urlsafe(32)
        return _sign_in_page("O formulário expirou ou veio de outro site. Tente de novo.", 400)
    expected = _services().settings.sync_admin_token
    given = request.form.get("token", "").strip()
    if not expected:
        return _sign_in_page("O servidor não tem SYNC_ADMIN_TOKEN configurado.", 503)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        return _sign_in_page("Token de administrador inválido.", 401)
    session.clear()  # a fresh session: nothing from before the sign-in survives it
    session["admin"] = True
    session["csrf"] = secrets.token_urlsafe(32)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/sair")
def sign_out() -> Any:
    """End the session (a POST with the page's CSRF token)."""
    if signed_in() and (not _same_origin_request() or not _form_token_matches("csrf")):
        abort(400, description="Pedido de saída inválido.")
    session.clear()
    return redirect(url_for("ui.sign_in"))


# -- pages ------------------------------------------------------------------------------
@bp.after_request
def _page_headers(response: Response) -> Response:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"  # pages carry the CSRF token
    return response


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    if request.path.startswith("/api/"):
        return jsonify(success=False, error=error.description), status
    return render_template("ui/error.html", status=status, message=error.description), status


@bp.get("/")
def home() -> Any:
    """The reports page is the home page."""
    return redirect(url_for("ui.reports"))


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


@bp.get("/relatorios")
@login_required
def reports() -> Any:
    """Reports of one company, with the sync controls and the progress modal."""
    settings = _services().settings
    today = today_in_brazil()
    month, month_error = _reports_month(request.args.get("month"), today)
    notices = [month_error] if month_error else []
    try:
        low_stock = _threshold_arg("lowStock")
    except ValidationError:
        low_stock = DEFAULT_LOW_STOCK_THRESHOLD
        notices.append("Saldo baixo inválido: usando o padrão.")
    with _db() as db:
        companies = list_companies(db)
        company = _pick_company(db, companies, request.args.get("companyId"))
        context: dict[str, Any] = {
            "companies": [company_view(c) for c in companies],
            "company": company_view(company) if company else None,
            "month": month,
            "month_label": month_label(month),
            "max_month": month_of(today),
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
    return render_template("ui/reports.html", **context)


@bp.get("/historico")
@login_required
def history() -> Any:
    """Runs, newest first, optionally of one company and status; paged by cursor."""
    company_id = request.args.get("companyId") or None
    status = request.args.get("status") or None
    before = request.args.get("before") or None
    with _db() as db:
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


@bp.get("/historico/<run_id>")
@login_required
def run_detail(run_id: str) -> Any:
    """One run: its summary, its modules and its full log (paged, newest first)."""
    before = request.args.get("before") or None
    with _db() as db:
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
        company_name=company.name if company else run.companyId,
        modules=[(key, MODULE_LABELS.get(key, key), modules.get(key, {})) for key in MODULE_KEYS],
        logs=[log_view(entry) for entry in logs],
        next_cursor=next_cursor,
        first_page=before is None,
    )


@bp.app_context_processor
def _ui_globals() -> dict[str, Any]:
    return {
        "signed_in": signed_in,
        "csrf_token": lambda: session.get("csrf", ""),
        "run_status_labels": RUN_STATUS_LABELS,
        "module_status_labels": MODULE_STATUS_LABELS,
        "mode_labels": MODE_LABELS,
        "module_labels": MODULE_LABELS,
    }


# -- report data (JSON; the API's auth guards every /api/admin/* route) ------------------
def _company_arg(db: Session) -> Company:
    return get_company(db, request.args.get("companyId"))


def _month_arg(today: date) -> str:
    return request.args.get("month") or month_of(today)


@bp.get("/api/admin/reports/sales")
def sales_json() -> Any:
    """Sales per day of a month with totals and average ticket."""
    today = today_in_brazil()
    with _db() as db:
        company = _company_arg(db)
        report = sales_report(db, company.id, _month_arg(today), today=today)
    return jsonify(success=True, companyId=company.id, sales=sales_view(report))


@bp.get("/api/admin/reports/bills")
def bills_json() -> Any:
    """Open payables or receivables (`kind`) by due date, overdue flagged."""
    kind = request.args.get("kind", "payables")
    if kind not in ("payables", "receivables"):
        raise ValidationError("kind must be 'payables' or 'receivables'")
    today = today_in_brazil()
    with _db() as db:
        company = _company_arg(db)
        report = open_bills_report(db, company.id, kind, today=today)
    return jsonify(success=True, companyId=company.id, bills=open_bills_view(report))


def _threshold_arg(name: str = "threshold") -> Decimal:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return DEFAULT_LOW_STOCK_THRESHOLD
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise ValidationError(f"threshold {raw!r} is not a number") from exc
    if not value.is_finite() or abs(value) > 10**9:
        raise ValidationError(f"threshold {raw!r} is out of range")
    return value


def _limit_arg() -> int:
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return DEFAULT_STOCK_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ValidationError("limit must be a whole number from 1 to 1000")
    return int(raw)


@bp.get("/api/admin/reports/stock")
def stock_json() -> Any:
    """Stock balances, lowest first, low ones flagged."""
    threshold, limit = _threshold_arg(), _limit_arg()
    with _db() as db:
        company = _company_arg(db)
        report = stock_report(db, company.id, threshold=threshold, limit=limit)
    return jsonify(success=True, companyId=company.id, stock=stock_view(report))


@bp.get("/api/admin/reports/summary")
def summary_json() -> Any:
    """Everything the reports page shows for a company and month, in one document."""
    today = today_in_brazil()
    with _db() as db:
        company = _company_arg(db)
        sales = sales_report(db, company.id, _month_arg(today), today=today)
        payables = open_bills_report(db, company.id, "payables", today=today)
        receivables = open_bills_report(db, company.id, "receivables", today=today)
        stock = stock_report(db, company.id)
    return jsonify(
        success=True,
        companyId=company.id,
        sales=sales_view(sales),
        payables=open_bills_view(payables),
        receivables=open_bills_view(receivables),
        stock=stock_view(stock),
    )
