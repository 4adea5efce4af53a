"""Connecting a v3 company to Tiny: the OAuth authorisation-code flow, with PKCE, in the browser.

`GET /oauth/tiny/start?companyId=…` (signed in) keeps a random `state` and a PKCE verifier in
this browser's signed session, bound to its sign-in (`sid`), and sends the browser to Tiny's
authorisation page. Tiny sends it back to `GET /oauth/tiny/callback?code=…&state=…`: the state
must be the one this session kept (once: it is removed as it is read), then the code, the
verifier and the app's secret are traded for the token pair, stored encrypted, and the
company no longer needs reconnecting. Every failure — denied, wrong or old state, an expired
or used code, Tiny unreachable — is a page in Portuguese with the way out, never a 500.

The start is a link (GET), not a form: the page's `form-action 'self'` policy would stop a
form's redirect to Tiny. The callback comes back by a top-level GET, which SameSite=Lax lets
the session cookie ride.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from flask import Blueprint, redirect, render_template, request, session, url_for

from api.state import services
from api.ui.auth import login_required, signed_in
from core.companies import get_company
from core.errors import NotFoundError, TinyError, TinyReconnectNeeded, ValidationError
from core.models import Company
from core.v3.oauth import OAuthClient, authorize_url, pkce_pair
from core.v3.tokens import V3, client_secret, store_pair

bp = Blueprint("oauth", __name__, url_prefix="/oauth/tiny")

#: How long a started authorisation may take before its state is refused (seconds).
STATE_MAX_AGE_SECONDS = 15 * 60
SESSION_KEY = "tiny_oauth"


def _problem(message: str, status: int, company_id: str | None = None) -> tuple[str, int]:
    """The Portuguese page of a connection that did not work, with a way to try again."""
    page = render_template(
        "ui/oauth_error.html", status=status, message=message, company_id=company_id
    )
    return page, status


def redirect_uri() -> str:
    """The callback registered in the Tiny app: TINY_V3_REDIRECT_URI, else this site's."""
    configured = services().settings.tiny_v3_redirect_uri
    return configured or url_for("ui.oauth.callback", _external=True)


def _oauth() -> OAuthClient:
    v3 = services().client.v3
    if v3 is None:
        raise RuntimeError("this process has no Tiny v3 client (core.services.build_services)")
    return v3.oauth


@bp.get("/start")
@login_required
def start() -> Any:
    """Send the browser to Tiny to authorise tinysync for one v3 company."""
    company_id = request.args.get("companyId")
    with services().session_factory() as db:
        try:
            company = get_company(db, company_id)
        except (ValidationError, NotFoundError):
            return _problem("Empresa não encontrada.", 404)
        if company.apiVersion != V3 or not company.v3ClientId:
            return _problem(
                f"A empresa {company.name} usa a API v2 do Tiny (token); não há o que conectar.",
                400,
                company.id,
            )
        client_id = company.v3ClientId
    state = secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    session[SESSION_KEY] = {
        "state": state,
        "verifier": verifier,
        "companyId": company.id,
        "sid": session.get("sid"),
        "startedAt": time.time(),
    }
    target = authorize_url(
        services().settings,
        client_id=client_id,
        redirect_uri=redirect_uri(),
        state=state,
        challenge=challenge,
    )
    return redirect(target)


@bp.get("/callback")
def callback() -> Any:
    """Tiny's answer: trade the code for the token pair, or say in Portuguese what went wrong."""
    kept = session.pop(SESSION_KEY, None)
    if not signed_in():
        return _problem(
            "Sua sessão terminou antes de o Tiny responder. Entre de novo e clique em "
            "Conectar ao Tiny.",
            401,
        )
    if not isinstance(kept, dict) or not _state_matches(kept, request.args.get("state")):
        return _problem(
            "A resposta do Tiny não corresponde a uma conexão iniciada neste navegador "
            "(state inválido ou expirado). Clique em Conectar ao Tiny de novo.",
            400,
            kept.get("companyId") if isinstance(kept, dict) else None,
        )
    company_id = str(kept["companyId"])
    error = request.args.get("error")
    if error:
        if error == "access_denied":
            message = "A autorização foi negada no Tiny: a empresa continua desconectada."
        else:
            detail = (request.args.get("error_description") or error)[:200]
            message = f"O Tiny não autorizou a conexão ({detail})."
        return _problem(message, 400, company_id)
    code = request.args.get("code")
    if not code:
        return _problem("O Tiny voltou sem o código de autorização.", 400, company_id)
    return _exchange(company_id, code, str(kept["verifier"]))


def _state_matches(kept: dict[str, Any], given: str | None) -> bool:
    if not given or not isinstance(kept.get("state"), str):
        return False
    if kept.get("sid") != session.get("sid"):  # started under another sign-in
        return False
    started = kept.get("startedAt")
    if not isinstance(started, int | float) or time.time() - started > STATE_MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(kept["state"], given)


def _exchange(company_id: str, code: str, verifier: str) -> Any:
    svc = services()
    with svc.session_factory() as db:
        company = db.get(Company, company_id, with_for_update=True)
        if company is None or company.apiVersion != V3:
            return _problem("Empresa não encontrada.", 404)
        try:
            pair = _oauth().exchange(
                client_id=company.v3ClientId or "",
                client_secret=client_secret(company, svc.settings),
                code=code,
                redirect_uri=redirect_uri(),
                verifier=verifier,
            )
        except TinyReconnectNeeded:
            db.rollback()
            return _problem(
                "O código de autorização do Tiny expirou ou já foi usado. "
                "Clique em Conectar ao Tiny de novo.",
                400,
                company_id,
            )
        except TinyError as exc:
            db.rollback()
            return _problem(
                f"Não foi possível concluir a conexão com o Tiny: {exc}", 502, company_id
            )
        store_pair(company, pair, svc.settings)
        db.commit()
    return redirect(url_for("ui.reports", companyId=company_id, conectado=1))
