"""Companies through the API: the Tiny token goes in and never comes out."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from core.models import Company
from tests.support.api import AUTH, SYNC, create_run

TOKEN = "tiny-token-that-must-never-leak-0001"


def test_a_company_is_created_listed_and_its_token_never_returned(client, api_services, caplog):
    with caplog.at_level(logging.DEBUG):
        created = client.post(
            "/api/admin/companies", json={"name": "Loja Azul", "token": TOKEN}, headers=AUTH
        )
        listed = client.get("/api/admin/companies", headers=AUTH)
    assert created.status_code == 201
    company = created.get_json()["company"]
    assert company["name"] == "Loja Azul" and company["active"] is True
    assert company["activeRunId"] is None
    assert listed.get_json() == {"success": True, "companies": [company]}
    for response in (created, listed):
        assert TOKEN not in response.get_data(as_text=True)
    assert TOKEN not in caplog.text
    with api_services.session_factory() as session:
        stored = session.scalars(select(Company)).one()
        assert TOKEN not in stored.tinyTokenEncrypted  # stored encrypted


def test_the_list_shows_each_company_s_active_run(client, company):
    run_id = create_run(client, company)
    companies = client.get("/api/admin/companies", headers=AUTH).get_json()["companies"]
    assert [(c["id"], c["activeRunId"]) for c in companies] == [(company, run_id)]


def test_a_deactivated_company_gets_no_cron_run_and_can_be_activated_again(client, company):
    off = client.post(f"/api/admin/companies/{company}/deactivate", headers=AUTH)
    assert off.status_code == 200 and off.get_json()["company"]["active"] is False
    from tests.support.api import CRON

    assert client.post("/api/cron/sync", headers=CRON).get_json()["created"] == []
    on = client.post(f"/api/admin/companies/{company}/activate", headers=AUTH)
    assert on.get_json()["company"]["active"] is True
    created = client.post(
        f"{SYNC}/create", json={"companyId": company, "mode": "incremental"}, headers=AUTH
    )
    assert created.status_code == 200


def test_bad_company_input_is_refused(client):
    url = "/api/admin/companies"
    for body, words in [
        ({"token": TOKEN}, "name is required"),
        ({"name": "Loja"}, "token is required"),
        ({"name": "", "token": TOKEN}, "name must not be empty"),
        ({"name": "Loja", "token": ""}, "token must not be empty"),
        ({"name": "   ", "token": TOKEN}, "needs a name"),
        ({"name": "Loja", "token": "has spaces in it"}, "malformed"),
        ({"name": "x" * 201, "token": TOKEN}, "at most 200 characters"),
        ({"name": 5, "token": TOKEN}, "name must be text"),
        ({"name": "Loja", "token": 5}, "token"),
        ({"name": "Lo\x00ja", "token": TOKEN}, "NUL"),
    ]:
        response = client.post(url, json=body, headers=AUTH)
        assert response.status_code == 400, body
        error = response.get_json()["error"]
        assert words in error, (body, error)
        assert TOKEN not in error
    unknown = str(uuid.uuid4())
    response = client.post(f"{url}/{unknown}/deactivate", headers=AUTH)
    assert response.status_code == 404
    response = client.post(f"{url}/nope/deactivate", headers=AUTH)
    assert response.status_code == 400
    assert client.get("/api/admin/companies", headers=AUTH).get_json()["companies"] == []


def test_a_company_s_pace_is_set_at_creation_changed_and_given_back_to_tiny(client, api_services):
    url = "/api/admin/companies"
    created = client.post(
        url, json={"name": "Loja", "token": TOKEN, "tinyCallsPerMinute": 30}, headers=AUTH
    )
    assert created.status_code == 201
    company = created.get_json()["company"]
    assert company["tinyCallsPerMinute"] == 30
    changed = client.patch(f"{url}/{company['id']}", json={"tinyCallsPerMinute": 90}, headers=AUTH)
    assert changed.status_code == 200 and changed.get_json()["company"]["tinyCallsPerMinute"] == 90
    back = client.patch(f"{url}/{company['id']}", json={"tinyCallsPerMinute": None}, headers=AUTH)
    assert back.get_json()["company"]["tinyCallsPerMinute"] is None
    listed = client.get(url, headers=AUTH).get_json()["companies"]
    assert [c["tinyCallsPerMinute"] for c in listed] == [None]
    with api_services.session_factory() as session:
        assert session.scalars(select(Company.tinyCallsPerMinute)).one() is None
    plain = client.post(url, json={"name": "Outra", "token": TOKEN + "2"}, headers=AUTH)
    assert plain.get_json()["company"]["tinyCallsPerMinute"] is None


def test_a_bad_pace_is_refused_with_a_sentence(client, company):
    url = f"/api/admin/companies/{company}"
    for value, words in [
        (0, "at least 1"),
        (601, "at most 600"),
        ("30", "whole number"),
        (2.5, "whole number"),
        (True, "whole number"),
        ([30], "whole number"),
    ]:
        for response in (
            client.patch(url, json={"tinyCallsPerMinute": value}, headers=AUTH),
            client.post(
                "/api/admin/companies",
                json={"name": "Loja", "token": TOKEN, "tinyCallsPerMinute": value},
                headers=AUTH,
            ),
        ):
            assert response.status_code == 400, value
            assert words in response.get_json()["error"], (value, response.get_json())
    missing = client.patch(url, json={}, headers=AUTH)
    assert missing.status_code == 400
    assert "tinyCallsPerMinute is required" in missing.get_json()["error"]
    unknown = client.patch(
        f"/api/admin/companies/{uuid.uuid4()}", json={"tinyCallsPerMinute": 30}, headers=AUTH
    )
    assert unknown.status_code == 404
    refused = client.patch(url, json={"tinyCallsPerMinute": 30})
    assert refused.status_code == 401
