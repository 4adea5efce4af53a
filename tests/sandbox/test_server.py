"""Server mode: real HTTP (GET and form POST), the admin surface, a timeout that really waits."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from sandbox import AccountSpec, Faults, Sandbox, make_server, serve
from tests.support.sandbox_calls import GENEROUS, TODAY, TOKEN, Api, Clock, error_code


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, str]]:
    """A sandbox behind a threaded server on a free port; yields it and the server's root URL."""
    sb = Sandbox(clock=Clock(), timeout_sleep_seconds=0.5)
    sb.add_account(TOKEN, AccountSpec(orders=250, days=100, **GENEROUS))
    server = make_server(sb, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sb, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def api(served) -> Iterator[Api]:
    _, root = served
    with httpx.Client(base_url=root + "/api2", timeout=10) as http:
        yield Api(http)


def test_get_and_form_post_over_http_answer_the_same_listing(api):
    by_get = api.raw("pedidos.pesquisa.php", pagina=2)
    by_post = api.raw("pedidos.pesquisa.php", method="POST", pagina=2)
    assert by_get.status_code == by_post.status_code == 200
    assert by_get.headers["x-limit-api"] == "1000000"
    assert by_get.json() == by_post.json()
    assert by_get.json()["retorno"]["numero_paginas"] == "3"


def test_one_keep_alive_connection_serves_many_calls(api):
    ids = set()
    for pagina in (1, 2, 3):
        ids |= {w["pedido"]["id"] for w in api("pedidos.pesquisa.php", pagina=pagina)["pedidos"]}
    assert len(ids) == 250
    assert error_code(api("pedidos.pesquisa.php", pagina=4)) == 23


def test_a_timeout_fault_really_waits_so_a_short_client_timeout_fires(served):
    sb, root = served
    sb.faults = Faults(p_timeout=1.0)
    params = {"token": TOKEN, "formato": "json"}
    with httpx.Client(base_url=root + "/api2", timeout=0.1) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.get("/pedidos.pesquisa.php", params=params)
    with httpx.Client(base_url=root + "/api2", timeout=5) as patient:
        started = time.monotonic()
        body = patient.get("/pedidos.pesquisa.php", params=params).json()
        assert time.monotonic() - started >= 0.5
    assert body["retorno"]["status"] == "OK"
    assert sb.counters(TOKEN).faults["timeout"] == 2


def test_threads_over_the_concurrency_limit_get_code_11_from_the_server(served):
    sb, root = served
    sb.add_account("tok-narrow", AccountSpec(orders=20, rate_limit_calls=1000, max_concurrent=2))
    sb.latency_seconds = 0.3
    results: list[int | None] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        with httpx.Client(base_url=root + "/api2", timeout=10) as http:
            barrier.wait()
            retorno = Api(http, token="tok-narrow")("pedidos.pesquisa.php")
            results.append(None if retorno["status"] == "OK" else int(retorno["codigo_erro"]))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 11 in results and None in results
    assert sb.counters("tok-narrow").concurrency_violations == results.count(11)


def test_the_admin_surface_drives_accounts_faults_evolve_counters_and_truth(served):
    sb, root = served
    with (
        httpx.Client(base_url=root, timeout=10) as http,
        httpx.Client(base_url=root + "/api2", timeout=10) as tiny_http,
    ):
        assert http.get("/_sandbox/health").json() == {"ok": True}
        created = http.post(
            "/_sandbox/accounts",
            json={"token": "tok-admin", "orders": 120, "days": 30, "items_per_order": [1, 2]},
        )
        assert created.status_code == 200
        tiny = Api(tiny_http, "tok-admin")
        assert tiny("pedidos.pesquisa.php")["numero_paginas"] == "2"

        assert http.post("/_sandbox/faults", json={"token": "tok-admin", "p_code35": 1}).is_success
        assert error_code(tiny("pedidos.pesquisa.php")) == 35
        assert api_ok(Api(tiny.http, TOKEN)("pedidos.pesquisa.php"))
        assert http.post("/_sandbox/clear_faults").is_success
        assert api_ok(tiny("pedidos.pesquisa.php"))

        failed = {"token": "tok-admin", "service": "contas.pagar.pesquisa.php", "code": 8}
        assert http.post("/_sandbox/fail_service", json=failed).is_success
        assert error_code(tiny("contas.pagar.pesquisa.php")) == 8
        http.post("/_sandbox/clear_faults")

        before = tiny("pedidos.pesquisa.php", pagina=2)["pedidos"]
        assert http.post(
            "/_sandbox/evolve", json={"token": "tok-admin", "new_orders": 3}
        ).is_success
        assert len(tiny("pedidos.pesquisa.php", pagina=2)["pedidos"]) == len(before) + 3

        counters = http.get("/_sandbox/counters", params={"token": "tok-admin"}).json()
        assert counters["calls"] == 6
        assert counters["by_code"] == {"35": 1, "8": 1}
        assert counters["per_service"]["pedidos.pesquisa.php"] == 5
        assert http.get("/_sandbox/counters").json()["calls"] == 7

        window = {"token": "tok-admin", "start": str(TODAY - timedelta(days=29)), "end": str(TODAY)}
        truth = http.get("/_sandbox/truth", params=window).json()
        assert truth == sb.truth("tok-admin", TODAY - timedelta(days=29), TODAY).to_json()
        order = next(iter(truth["orders"].values()))
        assert Decimal(order["valor"]) > 0 and order["data_pedido"].startswith("2025-")
        assert len(truth["orders"]) > 100

        assert http.post("/_sandbox/reset_counters").is_success
        assert http.get("/_sandbox/counters").json()["calls"] == 0


def api_ok(retorno: dict) -> bool:
    return retorno["status"] == "OK"


def test_admin_mistakes_get_clear_4xx_answers(served):
    _, root = served
    with httpx.Client(base_url=root, timeout=10) as http:
        assert http.post("/_sandbox/accounts", json={"orders": 5}).status_code == 400
        bad_field = http.post("/_sandbox/accounts", json={"token": "t", "ordres": 5})
        assert bad_field.status_code == 400 and "ordres" in bad_field.json()["error"]
        assert http.post("/_sandbox/faults", json={"p_5xx": 2}).status_code == 400
        assert http.post("/_sandbox/evolve", json={"token": "ghost"}).status_code == 404
        assert http.get("/_sandbox/truth", params={"token": TOKEN}).status_code == 400
        assert http.get("/_sandbox/nothing").status_code == 404
        assert http.get("/_sandbox/evolve").status_code == 405


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url + "/_sandbox/health", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_serve_blocks_serving_in_its_thread():
    sb = Sandbox()
    sb.add_account("tok-serve", AccountSpec(orders=30))
    port = free_port()
    # serve() has no stop handle; a daemon thread ends with the test process.
    thread = threading.Thread(
        target=serve, args=(sb, "127.0.0.1", port), kwargs={"quiet": True}, daemon=True
    )
    thread.start()
    root = f"http://127.0.0.1:{port}"
    wait_until_up(root)
    with httpx.Client(base_url=root + "/api2") as http:
        assert Api(http, "tok-serve")("pedidos.pesquisa.php")["numero_paginas"] == "1"


def test_python_dash_m_sandbox_serves_the_given_token_and_any_other_on_use():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--orders", "150", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        root = f"http://127.0.0.1:{port}"
        wait_until_up(root)
        with httpx.Client(base_url=root + "/api2") as http:
            assert Api(http, "sandbox-token")("pedidos.pesquisa.php")["numero_paginas"] == "2"
            assert Api(http, "any-company")("pedidos.pesquisa.php")["status"] == "OK"
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert b"sandbox on http://127.0.0.1" in out
