"""v3 companies for tests: an OAuth app on a sandbox account, a company for it, and the
authorisation-code flow done as a browser would (the sandbox approving at once)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from core.companies import add_company
from core.services import Services
from core.v3.access import V3Access
from core.v3.oauth import authorize_url, pkce_pair
from core.v3.tokens import store_pair
from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.services import fast_spec

REDIRECT_URI = "http://tinysync.test/oauth/tiny/callback"


def v3_spec(**overrides: object) -> AccountSpec:
    """`fast_spec` with v3's read budget out of the way too (unless a test sets it)."""
    return fast_spec(**{"v3_rate_limit_calls": 1_000_000, **overrides})


SECRET = "app-secret-0123456789"


def v3_access(services: Services) -> V3Access:
    """The process's v3 clients (`build_services` puts them beside the v2 client)."""
    assert services.client.v3 is not None
    return services.client.v3


def add_v3_company(
    services: Services,
    sandbox: Sandbox,
    token: str,
    spec: AccountSpec | None = None,
    *,
    client_id: str | None = None,
    redirect_uri: str = REDIRECT_URI,
    new_account: bool = True,
) -> tuple[str, str]:
    """A sandbox account (unless it exists) with an OAuth app, and a v3 company for it, not
    yet connected; returns (company id, client id)."""
    client_id = client_id or f"app-{token}"
    if new_account:
        sandbox.add_account(token, spec or v3_spec())
    sandbox.add_oauth_app(client_id, SECRET, redirect_uri, token=token)
    with services.session_factory() as session:
        company = add_company(
            session,
            services.settings,
            name=f"Company v3 {token}",
            api_version="v3",
            client_id=client_id,
            client_secret=SECRET,
        )
        session.commit()
        return company.id, client_id


def authorise(sandbox: Sandbox, url: str) -> dict[str, str]:
    """GET Tiny's authorisation URL with the sandbox approving at once: the callback's query."""
    before = sandbox.oauth_auto_approve
    sandbox.oauth_auto_approve = True
    try:
        with httpx.Client(transport=SandboxTransport(sandbox)) as http:
            answer = http.get(url)
    finally:
        sandbox.oauth_auto_approve = before
    assert answer.status_code in (302, 303), answer.text[:300]
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return {key: values[0] for key, values in query.items()}


def connect(services: Services, sandbox: Sandbox, company_id: str, client_id: str) -> None:
    """The authorisation-code flow with PKCE, then the pair stored on the company."""
    verifier, challenge = pkce_pair()
    url = authorize_url(
        services.settings.with_(
            tiny_v3_auth_url="http://sandbox.local/realms/tiny/protocol/openid-connect/auth"
        ),
        client_id=client_id,
        redirect_uri=REDIRECT_URI,
        state="st",
        challenge=challenge,
    )
    query = authorise(sandbox, url)
    pair = v3_access(services).oauth.exchange(
        client_id=client_id,
        client_secret=SECRET,
        code=query["code"],
        redirect_uri=REDIRECT_URI,
        verifier=verifier,
    )
    with services.session_factory() as session:
        from core.models import Company

        company = session.get(Company, company_id)
        assert company is not None
        store_pair(company, pair, services.settings)
        session.commit()


def new_v3_company(
    services: Services,
    sandbox: Sandbox,
    token: str,
    spec: AccountSpec | None = None,
    *,
    new_account: bool = True,
) -> tuple[str, str]:
    """A connected v3 company on a sandbox account: (company id, client id)."""
    company_id, client_id = add_v3_company(services, sandbox, token, spec, new_account=new_account)
    connect(services, sandbox, company_id, client_id)
    return company_id, client_id
