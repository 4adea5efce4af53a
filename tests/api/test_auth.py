"""Every admin route needs the admin token or a signed-in session (with CSRF on writes)."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask, jsonify

from api import create_app
from core.sessions import open_session
from tests.support.api import ADMIN_TOKEN, AUTH, CRON, SYNC, api_settings, create_run
from tests.support.services import make_services

PLACEHOLDER = str(uuid.UUID(int=1))
WRONG = [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    {"Authorization": f"Basic {ADMIN_TOKEN}"},
    {"Authorization": "Bearer"},
    {"Authorization": ADMIN_TOKEN},
]


def admin_requests(app: Flask) -> list[tuple[str, str]]:
    """(method, url) for every method of every rule under /api/admin/, whoever added it."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/admin/"):
            continue
        url = rule.rule
        for argument in rule.arguments:
            url = url.replace(f"<{argument}>", PLACEHOLDER)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


def test_every_admin_route_refuses_a_missing_or_wrong_token(app):
    client = app.test_client()
    routes = admin_requests(app)
    assert len(routes) >= 12  # the walk found the routes (a renamed prefix would empty it)
    for method, url in routes:
        for headers in WRONG:
            response = client.open(url, method=method, headers=headers, json={})
            assert response.status_code == 401, (method, url, headers)
            body = response.get_json()
            assert body["success"] is False and "token" in body["error"].lower(), (method, url)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_every_admin_route_lets_the_right_token_through(app):
    client = app.test_client()
    for method, url in admin_requests(app):
        response = client.open(url, method=method, headers=AUTH, json={})
        assert response.status_code not in (401, 403), (method, url, response.get_json())


def test_a_route_added_later_under_admin_is_protected_without_asking(app):
    app.add_url_rule("/api/admin/brand-new", "brand_new", lambda: jsonify(ok=True))
    client = app.test_client()
    assert client.get("/api/admin/brand-new").status_code == 401
    assert client.get("/api/admin/brand-new", headers=AUTH).get_json() == {"ok": True}


def test_without_an_admin_token_configured_the_admin_routes_are_closed(db_url, sandbox):
    services = make_services(api_settings(db_url, sync_admin_token=None), sandbox)
    app = create_app(services=services)
    client = app.test_client()
    with client.session_transaction() as session:
        session["admin"] = True
        session["csrf"] = "csrf"
    for method, url in admin_requests(app):
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
            response = client.open(url, method=method, headers=headers, json={})
            assert response.status_code == 503, (method, url)
            assert "SYNC_ADMIN_TOKEN" in response.get_json()["error"]
    services.close()


def _signed_in(client, csrf: str = "the-csrf-token") -> None:
    """A browser session as sign-in leaves it: its server-side row, `admin`, `csrf`."""
    with client.application.extensions["tinysync"].session_factory() as db:
        sid = open_session(db)
        db.commit()
    with client.session_transaction() as session:
        session.update(admin=True, csrf=csrf, sid=sid)


def test_a_signed_in_browser_session_may_read(client, company):
    run_id = create_run(client, company)
    _signed_in(client)
    response = client.get(f"{SYNC}/status?runId={run_id}")
    assert response.status_code == 200


def test_a_session_write_needs_the_csrf_header(client, company):
    _signed_in(client, "the-csrf-token")
    body = {"companyId": company, "mode": "incremental"}
    missing = client.post(f"{SYNC}/create", json=body)
    assert missing.status_code == 403
    assert "X-CSRF-Token" in missing.get_json()["error"]
    wrong = client.post(f"{SYNC}/create", json=body, headers={"X-CSRF-Token": "other"})
    assert wrong.status_code == 403
    right = client.post(f"{SYNC}/create", json=body, headers={"X-CSRF-Token": "the-csrf-token"})
    assert right.status_code == 200
    run = client.get(f"{SYNC}/status?runId={right.get_json()['runId']}").get_json()
    assert run["triggeredByUserId"] == "web"


@pytest.mark.parametrize(
    "session_values",
    [{"admin": "true", "csrf": "x"}, {"admin": 1, "csrf": "x"}, {"csrf": "x"}, {"admin": False}],
)
def test_a_session_that_is_not_exactly_admin_true_is_refused(client, session_values):
    with client.session_transaction() as session:
        session.update(session_values)
    assert client.get(f"{SYNC}/runs").status_code == 401


def test_a_session_cookie_signed_without_the_admin_token_is_refused(db_url, sandbox):
    # SECRET_KEY has a public default; a cookie signed with it alone must not pass.
    from flask.sessions import SecureCookieSessionInterface

    services = make_services(api_settings(db_url), sandbox)
    app = create_app(services=services)
    forger = Flask("forger")
    forger.secret_key = services.settings.secret_key
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    cookie = serializer.dumps({"admin": True, "csrf": "x"})
    client = app.test_client()
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
    assert client.get(f"{SYNC}/runs").status_code == 401
    services.close()


def test_a_wrong_bearer_token_is_refused_even_with_a_session(client):
    _signed_in(client)
    response = client.get(f"{SYNC}/runs", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401


def test_the_cron_route_needs_the_cron_secret(client):
    for headers in WRONG + [AUTH]:
        response = client.post("/api/cron/sync", headers=headers)
        assert response.status_code == 401, headers
        assert "CRON_SECRET" in response.get_json()["error"]
    assert client.post("/api/cron/sync", headers=CRON).status_code == 200


def test_without_a_cron_secret_configured_the_cron_route_is_closed(db_url, sandbox):
    services = make_services(api_settings(db_url, cron_secret=None), sandbox)
    client = create_app(services=services).test_client()
    response = client.post("/api/cron/sync", headers={"Authorization": "Bearer None"})
    assert response.status_code == 503
    assert "CRON_SECRET" in response.get_json()["error"]
    services.close()


def test_public_routes_need_no_token(client):
    for url in ("/healthz", "/api/ping", "/metrics", "/openapi.json"):
        assert client.get(url).status_code == 200, url
