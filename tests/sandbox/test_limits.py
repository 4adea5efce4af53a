"""Per-token rate limit (code 6), concurrency limit (code 11) and the counters."""

from __future__ import annotations

import threading

import httpx
import pytest

from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.sandbox_calls import Api, Clock


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def limited(spec: AccountSpec, **options) -> tuple[Sandbox, Ticker]:
    ticker = Ticker()
    sb = Sandbox(clock=Clock(), monotonic=ticker, **options)
    sb.add_account("tok", spec)
    return sb, ticker


def codes(sb: Sandbox, calls: int, token: str = "tok", tick=None) -> list[int | None]:
    """codigo_erro of each call (None for OK)."""
    out = []
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        api = Api(http, token=token)
        for _ in range(calls):
            retorno = api("pedidos.pesquisa.php")
            out.append(None if retorno["status"] == "OK" else int(retorno["codigo_erro"]))
            if tick:
                tick()
    return out


def test_going_over_the_calls_per_window_answers_code_6_with_tinys_message():
    sb, _ = limited(AccountSpec(orders=50, rate_limit_calls=5, rate_limit_window_seconds=60))
    assert codes(sb, 8) == [None] * 5 + [6] * 3
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        message = Api(http, token="tok")("pedidos.pesquisa.php")["erros"][0]["erro"]
    assert message.startswith("API Bloqueada - Excedido o número de acessos a API")
    counters = sb.counters("tok")
    assert counters.rate_limit_violations == 4 == counters.by_code[6]
    assert counters.calls == 9 and counters.ok == 5


def test_calls_spaced_at_the_allowed_pace_never_get_code_6():
    sb, ticker = limited(AccountSpec(orders=50, rate_limit_calls=5, rate_limit_window_seconds=60))

    def tick() -> None:
        ticker.t += 12.01  # 5 calls a minute, a hair slower

    assert codes(sb, 40, tick=tick) == [None] * 40
    assert sb.counters("tok").rate_limit_violations == 0


def test_the_window_slides_so_waiting_for_the_oldest_call_to_age_out_is_enough():
    sb, ticker = limited(AccountSpec(orders=50, rate_limit_calls=3, rate_limit_window_seconds=10))
    assert codes(sb, 3) == [None] * 3
    ticker.t += 9.9
    assert codes(sb, 1) == [6]  # rejected calls do not use up the window...
    ticker.t += 0.2
    assert codes(sb, 4) == [None] * 3 + [6]  # ...so all three slots are free again


def test_the_limit_is_per_token():
    sb, _ = limited(AccountSpec(orders=50, rate_limit_calls=2))
    sb.add_account("other", AccountSpec(orders=50, rate_limit_calls=2))
    assert codes(sb, 3) == [None, None, 6]
    assert codes(sb, 2, token="other") == [None, None]
    assert sb.counters().rate_limit_violations == 1


def hammer(sb: Sandbox, threads: int) -> list[int | None]:
    """`threads` simultaneous calls; returns their codes."""
    barrier = threading.Barrier(threads)
    results: list[int | None] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
            api = Api(http, token="tok")
            barrier.wait()
            retorno = api("produtos.pesquisa.php", pesquisa="")
            code = None if retorno["status"] == "OK" else int(retorno["codigo_erro"])
            with lock:
                results.append(code)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return results


def test_more_simultaneous_calls_than_allowed_get_code_11():
    spec = AccountSpec(orders=20, rate_limit_calls=1000, max_concurrent=3)
    sb, _ = limited(spec, latency_seconds=0.3)
    results = hammer(sb, 10)
    assert results.count(11) >= 1
    assert results.count(None) >= 3
    assert set(results) <= {None, 11}
    counters = sb.counters("tok")
    assert counters.concurrency_violations == results.count(11) == counters.by_code[11]
    assert counters.max_in_flight > 3


def test_calls_within_the_concurrency_limit_all_pass():
    spec = AccountSpec(orders=20, rate_limit_calls=1000, max_concurrent=4)
    sb, _ = limited(spec, latency_seconds=0.05)
    assert hammer(sb, 4) == [None] * 4
    counters = sb.counters("tok")
    assert counters.concurrency_violations == 0 and counters.max_in_flight <= 4


def test_counters_count_calls_per_service_and_answers_per_code_and_reset():
    sb, _ = limited(AccountSpec(orders=50, rate_limit_calls=1000))
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        api = Api(http, token="tok")
        api("pedidos.pesquisa.php")
        api("pedidos.pesquisa.php", pagina=9)
        api("pedido.obter.php", id=1)
        Api(http, token="stranger")("pedidos.pesquisa.php")
    mine = sb.counters("tok")
    assert mine.calls == 3 and mine.ok == 1
    assert mine.per_service == {"pedidos.pesquisa.php": 2, "pedido.obter.php": 1}
    assert mine.by_code[23] == 1 and mine.by_code[32] == 1 and mine.by_code[6] == 0
    assert sb.counters().calls == 4 and sb.counters().by_code[2] == 1
    sb.reset_counters()
    assert sb.counters().calls == 0 and sb.counters("tok").calls == 0


# -- the plan each token announces (x-limit-api) ---------------------------------------------
def limit_header(sb: Sandbox, token: str = "tok") -> str | None:
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://sb/api2") as http:
        return Api(http, token=token).raw("pedidos.pesquisa.php").headers.get("x-limit-api")


def test_each_token_announces_its_own_plan_on_every_answer_even_a_refusal():
    sb, _ = limited(AccountSpec(orders=20, rate_limit_calls=30))
    sb.add_account("big", AccountSpec(orders=20, rate_limit_calls=120))
    assert limit_header(sb) == "30" and limit_header(sb, "big") == "120"
    assert codes(sb, 30) == [None] * 29 + [6]  # the call above counted
    assert limit_header(sb) == "30"  # the code 6 answer says it too


def test_a_shortened_window_announces_its_plan_per_minute():
    # Tests shorten Tiny's minute: 10 calls in 20 s is the 30-a-minute plan, and says so.
    sb, ticker = limited(AccountSpec(orders=20, rate_limit_calls=10, rate_limit_window_seconds=20))
    assert limit_header(sb) == "30"
    assert codes(sb, 10) == [None] * 9 + [6]
    ticker.t += 20.01
    assert codes(sb, 1) == [None]


def test_an_account_can_answer_without_the_header():
    sb, _ = limited(AccountSpec(orders=20, rate_limit_calls=30, announce_limit=False))
    assert limit_header(sb) is None
    assert codes(sb, 30) == [None] * 29 + [6]  # the plan is enforced all the same


def test_the_command_line_gives_tokens_plans_of_their_own():
    from sandbox.__main__ import build

    args, sb, named = build(["--plan", "small=30", "--plan", "big=120", "--rate-limit", "60"])
    assert limit_header(sb, "small") == "30"
    assert limit_header(sb, "big") == "120"
    assert limit_header(sb, "sandbox-token") == "60"
    assert "small (30/min)" in named and "big (120/min)" in named
    for bad in ("nothing", "tok=", "tok=0", "=30"):
        with pytest.raises(SystemExit):
            build(["--plan", bad])
