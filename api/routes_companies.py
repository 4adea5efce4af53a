"""Companies: create (the Tiny token is write-only), list, pace, deactivate and activate."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.openapi import ADMIN, ADMIN_ERRORS, BODY_ERRORS, answers, spec
from api.schemas import CompaniesAnswer, CompanyAnswer, CompanyBody, CompanyPaceBody
from api.state import services
from core.companies import add_company, company_view, list_companies, set_active, set_pace
from core.errors import ValidationError
from core.models import Company, SyncRun
from core.runs import ACTIVE_STATUSES, active_run_id

bp = Blueprint("companies", __name__, url_prefix="/api/admin/companies")
TAGS = ["companies"]


@bp.post("")
@spec.validate(
    resp=answers(CompanyAnswer, *ADMIN_ERRORS, *BODY_ERRORS, ok_status=201),
    tags=TAGS,
    security=ADMIN,
)
def create(json: CompanyBody) -> tuple[Response, int]:
    """Add a company: v2 with its Tiny API token, v3 with its Tiny app's client id and secret
    (stored encrypted, never returned)."""
    if json.apiVersion == "v2" and json.token is None:
        raise ValidationError("token is required: the company's Tiny API token (v2)")
    svc = services()
    with svc.session_factory() as session:
        company = add_company(
            session,
            svc.settings,
            name=json.name,
            token=json.token.get_secret_value() if json.token else None,
            api_version=json.apiVersion,
            client_id=json.clientId,
            client_secret=json.clientSecret.get_secret_value() if json.clientSecret else None,
            calls_per_minute=json.tinyCallsPerMinute,
        )
        session.commit()
        return jsonify(success=True, company=_view(session, company)), 201


@bp.get("")
@spec.validate(resp=answers(CompaniesAnswer, *ADMIN_ERRORS), tags=TAGS, security=ADMIN)
def index() -> Response:
    """Every company by name, with the id of its active run, if any."""
    with services().session_factory() as session:
        active = dict(
            session.execute(
                select(SyncRun.companyId, SyncRun.id).where(SyncRun.status.in_(ACTIVE_STATUSES))
            ).all()
        )
        companies = [
            {**company_view(company), "activeRunId": active.get(company.id)}
            for company in list_companies(session)
        ]
        return jsonify(success=True, companies=companies)


@bp.patch("/<companyId>")
@spec.validate(
    resp=answers(CompanyAnswer, *ADMIN_ERRORS, *BODY_ERRORS, 404),
    tags=TAGS,
    security=ADMIN,
    path_parameter_descriptions={"companyId": "the company's id"},
)
def pace(companyId: str, json: CompanyPaceBody) -> Response:
    """Pace the company's Tiny account to `tinyCallsPerMinute` (null: to Tiny's header),
    from the next Tiny call of its runs."""
    with services().session_factory() as session:
        company = set_pace(session, companyId, json.tinyCallsPerMinute)
        session.commit()
        return jsonify(success=True, company=_view(session, company))


@bp.post("/<companyId>/deactivate")
@spec.validate(
    resp=answers(CompanyAnswer, *ADMIN_ERRORS, 404),
    tags=TAGS,
    security=ADMIN,
    path_parameter_descriptions={"companyId": "the company's id"},
)
def deactivate(companyId: str) -> Response:
    """Stop syncing a company: cron and beat skip it, and no run can be created for it."""
    return _set_active(companyId, False)


@bp.post("/<companyId>/activate")
@spec.validate(
    resp=answers(CompanyAnswer, *ADMIN_ERRORS, 404),
    tags=TAGS,
    security=ADMIN,
    path_parameter_descriptions={"companyId": "the company's id"},
)
def activate(companyId: str) -> Response:
    """Sync a deactivated company again."""
    return _set_active(companyId, True)


def _set_active(company_id: str, active: bool) -> Response:
    with services().session_factory() as session:
        company = set_active(session, company_id, active)
        session.commit()
        return jsonify(success=True, company=_view(session, company))


def _view(session: Session, company: Company) -> dict[str, Any]:
    return {**company_view(company), "activeRunId": active_run_id(session, company.id)}
