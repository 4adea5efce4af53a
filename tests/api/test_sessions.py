"""Browser sessions are revocable on the server: sign-out and a new sign-in end the old cookie
at once, and idle and absolute timeouts end it too."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from api import create_app
from core.models import UiSession, utcnow
from tests.support.api import ADMIN_TOKEN, SYNC, api_settings
from tests.support.services import make_services

COOKIE = "session"


def sign_in(client: FlaskClient) -> str:
    """Sign in through the form; returns the session cookie's value."""
    assert client.get("/entrar").status_code == 200
    with client.session_transaction() as session:
        form_token = session["login_csrf"]
    answer = client.post("/entrar", data={"token": ADMIN_TOKEN, "csrf": form_token})
    assert answer.status_code == 302, answer.get_data(True)
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def reads_with(app, cookie: str) -> int:
    """The status a fresh browser holding a copy of `cookie` gets for an admin read."""
    other = app.test_client()
    other.set_cookie(COOKIE, cookie)
    return other.get(f"{SYNC}/runs").status_code


def sign_out(client: FlaskClient) -> None:
    with client.session_transaction() as session:
        csrf = session["csrf"]
    assert client.post("/sair", data={"csrf": csrf}).status_code == 302


def test_a_copied_cookie_stops_working_at_sign_out(app, client):
    cookie = sign_in(client)
    assert reads_with(app, cookie) == 200
    sign_out(client)
    assert reads_with(app, cookie) == 401
    assert client.get("/relatorios").status_code == 302  # back to the sign-in page


def test_a_new_sign_in_ends_the_cookie_the_browser_had(app, client):
    first = sign_in(client)
    second = sign_in_again(client)
    assert first != second
    assert reads_with(app, first) == 401
    assert reads_with(app, second) == 200


def sign_in_again(client: FlaskClient) -> str:
    # A signed-in browser is sent on from /entrar; a new sign-in is a POST of the form.
    with client.session_transaction() as session:
        session["login_csrf"] = "form-token"
    answer = client.post("/entrar", data={"token": ADMIN_TOKEN, "csrf": "form-token"})
    assert answer.status_code == 302
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def _age_sessions(app, *, created: timedelta, seen: timedelta) -> None:
    with app.extensions["tinysync"].session_factory() as db:
        for row in db.query(UiSession):
            row.createdAt = utcnow() - created
            row.lastSeenAt = utcnow() - seen
        db.commit()


def test_idle_and_absolute_timeouts(db_url, sandbox):
    settings = api_settings(db_url, session_idle_minutes=30, session_max_hours=8)
    services = make_services(settings, sandbox)
    app = create_app(services=services)
    client = app.test_client()
    cookie = sign_in(client)
    _age_sessions(app, created=timedelta(hours=1), seen=timedelta(minutes=29))
    assert reads_with(app, cookie) == 200  # and that read renews the idle clock
    with services.session_factory() as db:
        assert utcnow() - db.query(UiSession).one().lastSeenAt < timedelta(minutes=1)
    _age_sessions(app, created=timedelta(hours=1), seen=timedelta(minutes=31))
    assert reads_with(app, cookie) == 401
    cookie = sign_in(client)
    _age_sessions(app, created=timedelta(hours=8, minutes=1), seen=timedelta(seconds=1))
    assert reads_with(app, cookie) == 401
    services.close()


def test_the_cookie_is_secure_when_configured_and_lasts_the_absolute_timeout(db_url, sandbox):
    services = make_services(
        api_settings(db_url, session_cookie_secure=True, session_max_hours=2), sandbox
    )
    app = create_app(services=services)
    client = app.test_client()
    client.get("/entrar")
    with client.session_transaction() as session:
        form_token = session["login_csrf"]
    answer = client.post(
        "/entrar", data={"token": ADMIN_TOKEN, "csrf": form_token}, base_url="https://localhost"
    )
    header = answer.headers["Set-Cookie"]
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    assert "Expires=" in header
    services.close()


def test_behind_a_proxy_the_forwarded_scheme_and_client_are_trusted_only_when_configured(
    db_url, sandbox
):
    seen = {}
    for hops in (0, 1):
        services = make_services(api_settings(db_url, trusted_proxies=hops), sandbox)
        app = create_app(services=services)

        @app.get("/api/whoami")
        def whoami():
            from flask import request

            return {"secure": request.is_secure, "addr": request.remote_addr}

        answer = app.test_client().get(
            "/api/whoami",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
        )
        seen[hops] = answer.get_json()
        services.close()
    assert seen[0] == {"secure": False, "addr": "127.0.0.1"}
    assert seen[1] == {"secure": True, "addr": "203.0.113.9"}
