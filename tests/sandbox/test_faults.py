"""Injected faults at their probabilities, counted exactly; permanent failed services."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from sandbox import AccountSpec, Faults, Sandbox
from tests.support.sandbox_calls import GENEROUS, TOKEN, Api, error_code


def observe(http: httpx.Client, token: str = TOKEN, **params) -> str:
    """What the client saw on one call: a fault kind, 'ok' or 'other'."""
    service = "pedido.obter.php" if "id" in params else "pedidos.pesquisa.php"
    try:
        response = Api(http, token=token).raw(service, **params)
    except httpx.ReadTimeout:
        return "timeout"
    if response.status_code >= 500:
        assert response.status_code in (500, 502, 503)
        assert response.text.lstrip().startswith("<html>")
        return "5xx"
    assert response.status_code == 200
    try:
        retorno = response.json()["retorno"]
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "malformed"
    if retorno["status"] == "OK":
        return "ok"
    return {35: "code35", 99: "code99"}.get(int(retorno["codigo_erro"]), "other")


def test_each_fault_kind_appears_at_its_probability_and_is_counted_exactly(sb, http, api):
    # One order per call keeps 3000 calls quick.
    order_id = api("pedidos.pesquisa.php")["pedidos"][0]["pedido"]["id"]
    sb.reset_counters()
    sb.faults = Faults(
        p_5xx=0.10, p_code35=0.05, p_timeout=0.08, p_malformed=0.07, p_code99=0.02, seed=3
    )
    calls = 3000
    seen = Counter(observe(http, id=order_id) for _ in range(calls))
    expected = {"5xx": 0.10, "code35": 0.05, "timeout": 0.08, "malformed": 0.07, "code99": 0.02}
    for kind, p in expected.items():
        assert abs(seen[kind] / calls - p) < 0.025, (kind, seen[kind])
    assert seen["other"] == 0
    counters = sb.counters(TOKEN)
    assert counters.calls == calls
    assert dict(counters.faults) == {kind: seen[kind] for kind in expected}
    assert counters.by_code[35] == seen["code35"] and counters.by_code[99] == seen["code99"]
    assert counters.ok == seen["ok"]


def test_the_same_fault_seed_injects_the_same_sequence(sb, http):
    runs = []
    for _ in range(2):
        sb.faults = Faults(p_5xx=0.2, p_code35=0.2, p_malformed=0.2, seed=11)
        runs.append([observe(http) for _ in range(50)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 4


def test_per_token_faults_override_the_global_ones(sb, http):
    sb.add_account("tok-calm", AccountSpec(orders=20, **GENEROUS))
    sb.faults = Faults(p_code35=1.0)
    sb.set_faults("tok-calm", Faults())
    assert observe(http) == "code35"
    assert observe(http, token="tok-calm") == "ok"
    sb.clear_faults()
    assert observe(http) == "ok"


def test_the_in_process_timeout_raises_httpx_read_timeout(sb, http):
    sb.set_faults(TOKEN, Faults(p_timeout=1.0))
    with pytest.raises(httpx.ReadTimeout):
        Api(http).raw("pedidos.pesquisa.php")
    assert sb.counters(TOKEN).faults["timeout"] == 1


def test_faults_come_after_auth_so_bad_tokens_are_never_faulted(sb, http):
    sb.faults = Faults(p_5xx=1.0)
    assert error_code(Api(http, token="nobody")("pedidos.pesquisa.php")) == 2
    assert sb.counters("nobody").faults == {}


@pytest.mark.parametrize("code", [2, 5, 8, 10, 20])
def test_a_failed_service_answers_its_code_on_every_call_until_cleared(sb, api, code):
    sb.fail_service(TOKEN, "contas.pagar.pesquisa.php", code)
    for _ in range(3):
        assert error_code(api("contas.pagar.pesquisa.php")) == code
    assert api("pedidos.pesquisa.php")["status"] == "OK"
    sb.clear_faults()
    assert api("contas.pagar.pesquisa.php")["status"] == "OK"


def test_a_service_failed_for_every_token_reaches_all_accounts(sb, http):
    sb.add_account("tok-2", AccountSpec(orders=20, **GENEROUS))
    sb.fail_service(None, "/api2/produtos.pesquisa.php", 99)
    for token in (TOKEN, "tok-2"):
        assert error_code(Api(http, token=token)("produtos.pesquisa.php", pesquisa="")) == 99


def test_fault_settings_are_validated():
    with pytest.raises(ValueError):
        Faults(p_5xx=0.7, p_code35=0.7)
    with pytest.raises(ValueError):
        Faults(p_timeout=-0.1)
    with pytest.raises(ValueError):
        Sandbox().fail_service(None, "nope.php", 5)
