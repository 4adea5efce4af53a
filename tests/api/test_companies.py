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
