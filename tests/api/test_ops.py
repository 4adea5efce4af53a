"""Health, metrics, the OpenAPI document and the ping route."""

from __future__ import annotations

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from core.ratelimit import LocalRateLimiter
from core.services import build_services
from sandbox import SandboxTransport
from tests.support.api import AUTH, METRICS, SYNC, api_settings, create_run, step_until_done
from tests.support.env import REDIS_TEST_URL, unavailable


def _app(db_url, sandbox, **overrides):
    settings = api_settings(db_url, **overrides)
    services = build_services(
        settings, transport=SandboxTransport(sandbox), limiter=LocalRateLimiter(0, 4)
    )
    return create_app(services=services, enqueue=lambda run_id: None), services


def test_healthz_is_ok_with_the_database_and_no_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "success": True,
        "status": "ok",
        "executor": "inline",
        "checks": {"database": "ok", "broker": "not configured"},
    }


def test_healthz_is_503_when_the_database_has_no_schema(tmp_path, sandbox):
    app, services = _app(f"sqlite:///{tmp_path / 'empty.db'}", sandbox)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "unavailable"
    services.close()


def test_healthz_is_503_when_the_redis_broker_is_down(db_url, sandbox):
    app, services = _app(db_url, sandbox, celery_broker_url="redis://127.0.0.1:1/0")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["executor"] == "celery"
    assert body["checks"] == {"database": "ok", "broker": "unavailable"}
    services.close()


def test_healthz_pings_a_live_redis_broker(db_url, sandbox):
    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    app, services = _app(db_url, sandbox, celery_broker_url=REDIS_TEST_URL)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["broker"] == "ok"
    services.close()


def test_healthz_checks_other_brokers_through_kombu(db_url, sandbox):
    app, services = _app(db_url, sandbox, celery_broker_url="memory://")
    assert app.test_client().get("/healthz").get_json()["checks"]["broker"] == "ok"
    services.close()


def _metrics(client, headers=METRICS) -> dict[str, list]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {
        family.name: family.samples
        for family in text_string_to_metric_families(response.get_data(as_text=True))
    }


def test_metrics_expose_runs_records_tiny_calls_and_step_durations(client, company):
    run_id = create_run(client, company)
    client.post(f"{SYNC}/start", json={"runId": run_id}, headers=AUTH)
    done = step_until_done(client, run_id)
    families = _metrics(client)
    assert {
        "tinysync_runs",
        "tinysync_records",
        "tinysync_tiny_calls",
        "tinysync_tiny_retries",
        "tinysync_run_tiny_calls",
        "tinysync_step_duration_seconds",
        "tinysync_database_up",
    } <= set(families)

    runs = {s.labels["status"]: s.value for s in families["tinysync_runs"]}
    assert runs == {"QUEUED": 0, "RUNNING": 0, "DONE": 1, "FAILED": 0, "CANCELED": 0}
    records = {s.labels["module"]: s.value for s in families["tinysync_records"]}
    processed = {key: m["processed"] for key, m in done["progress"]["modules"].items()}
    assert records == processed
    calls = [s.value for s in families["tinysync_tiny_calls"] if s.name.endswith("_total")]
    assert calls[0] > 0
    run_calls = families["tinysync_run_tiny_calls"][0].value
    assert run_calls == calls[0]
    steps = {
        s.labels["module"]: s.value
        for s in families["tinysync_step_duration_seconds"]
        if s.name.endswith("_count")
    }
    assert set(steps) >= set(processed) and all(v >= 1 for v in steps.values())


def test_each_app_has_its_own_registry(db_url, sandbox, company, client):
    other, services = _app(db_url, sandbox)
    run_id = create_run(client, company)
    client.post(f"{SYNC}/start", json={"runId": run_id}, headers=AUTH)
    client.post(f"{SYNC}/step", json={"runId": run_id}, headers=AUTH)
    assert _metrics(client)["tinysync_step_duration_seconds"]
    assert _metrics(other.test_client())["tinysync_step_duration_seconds"] == []
    services.close()


def test_ping_is_trivial_and_public(client):
    assert client.get("/api/ping").get_json() == {"ok": True}


def test_openapi_documents_every_api_route_with_its_security(app, client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("ui."):
            continue  # the web UI's pages and files, not the API
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = paths[path][method.lower()]
            assert operation["summary"] and operation["responses"], (method, path)
            if path.startswith("/api/admin/"):
                assert operation["security"] == [{"adminToken": []}], path
                assert {"401", "403"} <= set(operation["responses"]), path
            if path.startswith("/api/cron/"):
                assert operation["security"] == [{"cronSecret": []}], path
    create = paths["/api/admin/sync/v2/create"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CreateRunBody"
    )
    assert {"200", "400", "404", "409", "413"} <= set(create["responses"])
    assert "304" in paths["/api/admin/sync/v2/status"]["get"]["responses"]
    schemas = doc["components"]["schemas"]
    assert schemas["CompanyBody"]["properties"]["token"]["writeOnly"] is True
    assert "token" not in schemas["CompanyView"]["properties"]
    assert set(doc["components"]["securitySchemes"]) == {"adminToken", "cronSecret"}


@pytest.mark.parametrize("path", ["/api/admin/sync/v2/runs", "/healthz"])
def test_head_requests_work_like_get(client, path):
    assert client.head(path, headers=AUTH).status_code == 200


def test_metrics_without_the_token_show_the_process_only(client, company):
    run_id = create_run(client, company)
    client.post(f"{SYNC}/start", json={"runId": run_id}, headers=AUTH)
    step_until_done(client, run_id)
    public = _metrics(client, headers={})
    assert public and not [name for name in public if name.startswith("tinysync")]
    assert "process_cpu_seconds" in public or "python_gc_objects_collected" in public
    for wrong, code in (("Bearer nope", 401), (AUTH["Authorization"], 401), ("Bearer ", 200)):
        response = client.get("/metrics", headers={"Authorization": wrong})
        assert response.status_code == code, wrong
        assert b"tinysync_" not in response.get_data(), wrong


def test_metrics_refuse_every_token_when_none_is_configured(db_url, sandbox):
    app, services = _app(db_url, sandbox, metrics_token=None)
    response = app.test_client().get("/metrics", headers=METRICS)
    assert response.status_code == 401
    assert b"tinysync_runs" not in app.test_client().get("/metrics").get_data()
    services.close()
