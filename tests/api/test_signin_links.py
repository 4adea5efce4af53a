"""One-time sign-in links: once, within their minutes, only their hash stored."""

from __future__ import annotations

from sqlalchemy import select

from core.models import SignInLink
from core.signin_links import issue_sign_in_link, redeem_sign_in_link


def test_a_link_signs_in_once_and_lands_where_it_says(client, api_services, company):
    with api_services.session_factory() as db:
        token = issue_sign_in_link(db)
        stored = db.scalars(select(SignInLink.id)).all()
    assert token not in stored and len(stored) == 1  # the hash, never the token
    target = f"/relatorios?companyId={company}"
    first = client.get("/entrar", query_string={"link": token, "next": target})
    assert first.status_code == 302 and first.headers["Location"] == target
    page = client.get(target)
    assert page.status_code == 200 and "Sincronizar" in page.get_data(as_text=True)
    other = client.application.test_client()
    again = other.get("/entrar", query_string={"link": token, "next": target})
    assert again.status_code == 400
    assert "já foi usado ou expirou" in again.get_data(as_text=True)
    assert other.get(target).status_code == 302  # still not signed in


def test_an_expired_or_unknown_link_signs_nobody_in(client, api_services):
    with api_services.session_factory() as db:
        expired = issue_sign_in_link(db, minutes=-1)
        assert not redeem_sign_in_link(db, expired)
        assert not redeem_sign_in_link(db, "not-a-link")
        assert not redeem_sign_in_link(db, "x" * 5000)
    answer = client.get("/entrar", query_string={"link": expired, "next": "//evil.example"})
    assert answer.status_code == 400


def test_a_link_to_another_site_lands_on_the_reports_instead(client, api_services):
    with api_services.session_factory() as db:
        token = issue_sign_in_link(db)
    answer = client.get("/entrar", query_string={"link": token, "next": "//evil.example/x"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/relatorios"
