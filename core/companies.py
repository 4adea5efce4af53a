"""Companies and their Tiny credentials (write-only: stored encrypted, never returned)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.crypto import account_key, decrypt_token, encrypt_token, is_current, rotate_token
from core.errors import NotFoundError, ValidationError
from core.models import Company
from core.settings import Settings, token_key_problem

#: The per-company pace override accepted, in calls a minute (Tiny's plans: 20 to 120).
MIN_CALLS_PER_MINUTE, MAX_CALLS_PER_MINUTE = 1, 600

API_VERSIONS = ("v2", "v3")


def check_calls_per_minute(value: Any) -> int | None:
    """A pace override as stored (None: follow Tiny's header), or ValidationError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("tinyCallsPerMinute must be a whole number of calls a minute")
    if not MIN_CALLS_PER_MINUTE <= value <= MAX_CALLS_PER_MINUTE:
        raise ValidationError(
            f"tinyCallsPerMinute must be between {MIN_CALLS_PER_MINUTE} and "
            f"{MAX_CALLS_PER_MINUTE} calls a minute (or null to follow the limit Tiny announces)"
        )
    return value


def add_company(
    session: Session,
    settings: Settings,
    *,
    name: str,
    token: str | None = None,
    api_version: str = "v2",
    client_id: str | None = None,
    client_secret: str | None = None,
    calls_per_minute: int | None = None,
) -> Company:
    """Create a company: v2 with its Tiny token, or v3 with its OAuth app (client id and
    secret; "Conectar ao Tiny" then stores its token pair). The caller commits."""
    name = (name or "").strip()
    token = (token or "").strip()
    if not name:
        raise ValidationError("the company needs a name")
    if len(name) > 200:
        raise ValidationError("the company name is longer than 200 characters")
    calls_per_minute = check_calls_per_minute(calls_per_minute)
    if api_version not in API_VERSIONS:
        raise ValidationError(f"apiVersion must be v2 or v3, not {api_version!r}")
    if api_version == "v3":
        company = _add_v3_company(session, settings, name, client_id, client_secret)
        company.tinyCallsPerMinute = calls_per_minute
        session.flush()
        return company
    if not token:
        raise ValidationError("the company needs its Tiny API token")
    if len(token) > 500 or any(ch.isspace() for ch in token):
        raise ValidationError("the Tiny token looks malformed (spaces or over 500 characters)")
    problem = token_key_problem(settings)  # a real token under a public key: refused
    if problem:
        raise ValidationError(problem)
    company = Company(
        name=name,
        active=True,
        tinyTokenEncrypted=encrypt_token(token, settings.secret_keys),
        tinyAccountKey=account_key(token, settings.secret_key),
        tinyCallsPerMinute=calls_per_minute,
    )
    session.add(company)
    session.flush()
    return company


def _add_v3_company(
    session: Session,
    settings: Settings,
    name: str,
    client_id: str | None,
    client_secret: str | None,
) -> Company:
    client_id = (client_id or "").strip()
    client_secret = (client_secret or "").strip()
    if not client_id or not client_secret:
        raise ValidationError("a v3 company needs its Tiny app's client id and client secret")
    for what, value in (("client id", client_id), ("client secret", client_secret)):
        if len(value) > 200 or any(ch.isspace() for ch in value):
            raise ValidationError(f"the {what} looks malformed (spaces or over 200 characters)")
    keys = settings.secret_keys
    company = Company(
        name=name,
        active=True,
        apiVersion="v3",
        # v3 has no v2 token; the column keeps an encrypted empty one.
        tinyTokenEncrypted=encrypt_token("", keys),
        # Tiny counts calls per account; the app's id stands for it (apps of one account
        # share its limit, which tinysync cannot see from here).
        tinyAccountKey=account_key("v3:" + client_id, settings.secret_key),
        v3ClientId=client_id,
        v3ClientSecretEncrypted=encrypt_token(client_secret, keys),
    )
    session.add(company)
    session.flush()
    return company


def check_id(value: Any, what: str) -> str:
    """Return `value` as a canonical UUID string, or raise a ValidationError naming `what`."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} is required")
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError as exc:
        raise ValidationError(f"{what} {value!r} is not a valid id") from exc


def get_company(session: Session, company_id: Any) -> Company:
    """The company with this id, or NotFoundError."""
    company = session.get(Company, check_id(company_id, "companyId"))
    if company is None:
        raise NotFoundError(f"company {company_id} not found")
    return company


def list_companies(session: Session, *, active_only: bool = False) -> list[Company]:
    """Companies by name."""
    stmt = select(Company).order_by(Company.name, Company.id)
    if active_only:
        stmt = stmt.where(Company.active.is_(True))
    return list(session.scalars(stmt))


def set_active(session: Session, company_id: Any, active: bool) -> Company:
    """Activate or deactivate a company (inactive ones are skipped by cron and beat)."""
    company = get_company(session, company_id)
    company.active = active
    session.flush()
    return company


def set_pace(session: Session, company_id: Any, calls_per_minute: int | None) -> Company:
    """Pace the company's account to `calls_per_minute` (None: Tiny's `x-limit-api`)."""
    company = get_company(session, company_id)
    company.tinyCallsPerMinute = check_calls_per_minute(calls_per_minute)
    session.flush()
    return company


def company_token(company: Company, settings: Settings) -> str:
    """The company's Tiny token, decrypted for a call; never log or return it."""
    return decrypt_token(company.tinyTokenEncrypted, settings.secret_keys)


def rotate_tokens(session: Session, settings: Settings) -> tuple[int, int]:
    """Re-encrypt every stored token under SECRET_KEY; returns (re-encrypted, already current).

    A token no key decrypts raises SyncError before anything is written. The caller commits.
    (`tinyAccountKey` keeps its value: it only names the account, and running processes
    share it through the database.)
    """
    keys = settings.secret_keys
    companies = list(session.scalars(select(Company).order_by(Company.id)))

    def stale(company: Company) -> list[str]:
        return [
            column
            for column in _ENCRYPTED
            if getattr(company, column) and not is_current(getattr(company, column), keys)
        ]

    changed = [(company, stale(company)) for company in companies]
    changed = [(company, columns) for company, columns in changed if columns]
    for company, columns in changed:
        for column in columns:
            setattr(company, column, rotate_token(getattr(company, column), keys))
    session.flush()
    return len(changed), len(companies) - len(changed)


#: Every encrypted column of a company (the v2 token, the v3 app secret and token pair).
_ENCRYPTED = (
    "tinyTokenEncrypted",
    "v3ClientSecretEncrypted",
    "v3AccessTokenEncrypted",
    "v3RefreshTokenEncrypted",
)


def company_view(company: Company) -> dict[str, Any]:
    """The public JSON of a company: everything but its secrets (token, app secret, pair)."""
    v3 = company.apiVersion == "v3"
    return {
        "id": company.id,
        "name": company.name,
        "active": company.active,
        "tinyCallsPerMinute": company.tinyCallsPerMinute,
        "createdAt": company.createdAt.isoformat() if company.createdAt else None,
        "apiVersion": company.apiVersion or "v2",
        "clientId": company.v3ClientId if v3 else None,
        "connected": bool(company.v3RefreshTokenEncrypted) if v3 else None,
        "needsReconnect": bool(company.needsReconnect) if v3 else False,
        "needsReconnectReason": company.needsReconnectReason if v3 else None,
    }
