"""The Tiny client against the sandbox: each error code of the research table gets its treatment."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import httpx
import pytest

from core.errors import TinyAuthError, TinyPermanentError, TinyRateLimitError, TinyTransientError
from core.settings import Settings
from core.tiny import TinyClient, format_datetime
from core.values import parse_date, parse_money
from sandbox import AccountSpec, Faults, Sandbox, SandboxTransport

TOKEN = "tok-client"
ORDERS = "pedidos.pesquisa.php"


@pytest.fixture
def sb() -> Sandbox:
    sandbox = Sandbox()
    sandbox.add_account(TOKEN, AccountSpec(orders=250, days=30))
    return sandbox


def client_for(sb: Sandbox, **overrides) -> TinyClient:
    settings = Settings(
        tiny_api_url="sandbox",
        tiny_max_retries=overrides.pop("tiny_max_retries", 2),
        tiny_retry_base_seconds=0.001,
        tiny_rate_limit_backoff_seconds=0.001,
        **overrides,
    )
    return TinyClient(settings, transport=SandboxTransport(sb), base_url="http://sb/api2")


def page(client: TinyClient, n: int = 1, **params):
    return client.list_page(TOKEN, ORDERS, "pedidos", "pedido", params, n, account="a")


def test_a_listing_page_parses_string_numbers_and_money_as_decimal(sb):
    result = page(client_for(sb))
    assert result.page == 1 and result.total_pages == 3
    assert len(result.records) == 100
    valor = parse_money(result.records[0]["valor"], "valor")
    assert isinstance(valor, Decimal)
    assert parse_date(result.records[0]["data_pedido"], "data_pedido") is not None


@pytest.mark.parametrize("code", [20])
def test_code_20_is_an_empty_page_not_an_error(sb, code):
    sb.fail_service(TOKEN, ORDERS, code)
    result = page(client_for(sb))
    assert result.records == [] and result.is_last


def test_code_23_past_the_last_page_ends_the_listing(sb):
    result = page(client_for(sb), 99)
    assert result.records == []
    pages = list(client_for(sb).iter_pages(TOKEN, ORDERS, "pedidos", "pedido", {}, account="a"))
    assert [p.page for p in pages] == [1, 2, 3]
    assert sum(len(p.records) for p in pages) == 250


def test_code_32_is_a_missing_record(sb):
    client = client_for(sb)
    assert client.get_record(TOKEN, "pedido.obter.php", "pedido", 999_999_999, account="a") is None


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        (1, TinyAuthError, "token is missing"),
        (2, TinyAuthError, "token is invalid"),
        (5, TinyPermanentError, "blocked for this account"),
        (8, TinyPermanentError, "company is blocked"),
        (10, TinyPermanentError, "parameter Tiny requires is missing"),
    ],
)
def test_permanent_codes_fail_at_once_with_a_clear_message(sb, code, error, words):
    sb.fail_service(TOKEN, ORDERS, code)
    client = client_for(sb)
    with pytest.raises(error) as info:
        page(client)
    assert words in str(info.value)
    assert TOKEN not in str(info.value)
    assert sb.counters(TOKEN).calls == 1  # no retry
    assert not isinstance(info.value, TinyTransientError)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (6, TinyRateLimitError),
        (11, TinyRateLimitError),
        (35, TinyTransientError),
        (99, TinyTransientError),
    ],
)
def test_transient_codes_are_retried_up_to_the_limit(sb, code, error):
    sb.fail_service(TOKEN, ORDERS, code)
    client = client_for(sb, tiny_max_retries=3)
    seen: list[int] = []
    with pytest.raises(error):
        client.list_page(
            TOKEN,
            ORDERS,
            "pedidos",
            "pedido",
            {},
            1,
            account="a",
            on_retry=lambda service, attempt, exc, wait: seen.append(attempt),
        )
    assert sb.counters(TOKEN).calls == 4
    assert seen == [1, 2, 3]


def test_code_6_waits_for_the_minute_window_before_retrying(sb):
    sb.fail_service(TOKEN, ORDERS, 6)
    waits: list[float] = []
    settings = Settings(tiny_max_retries=1, tiny_rate_limit_backoff_seconds=61.0)
    client = TinyClient(
        settings, transport=SandboxTransport(sb), base_url="http://sb/api2", sleep=waits.append
    )
    with pytest.raises(TinyRateLimitError):
        page(client)
    assert waits == [61.0]


@pytest.mark.parametrize(
    "fault",
    [Faults(p_5xx=1.0), Faults(p_timeout=1.0), Faults(p_malformed=1.0), Faults(p_code35=1.0)],
)
def test_http_failures_timeouts_and_bad_bodies_are_transient(sb, fault):
    sb.set_faults(TOKEN, fault)
    client = client_for(sb, tiny_max_retries=2)
    with pytest.raises(TinyTransientError):
        page(client)
    assert sb.counters(TOKEN).calls == 3
    sb.clear_faults()
    assert len(page(client).records) == 100


def test_occasional_faults_are_absorbed_by_retries(sb):
    sb.set_faults(TOKEN, Faults(p_5xx=0.2, p_code35=0.2, seed=3))
    client = client_for(sb, tiny_max_retries=8)
    pages = list(client.iter_pages(TOKEN, ORDERS, "pedidos", "pedido", {}, account="a"))
    assert sum(len(p.records) for p in pages) == 250
    assert sum(client.stats.retries.values()) == sum(sb.counters(TOKEN).faults.values())


def test_the_token_travels_in_the_body_never_in_the_url(sb):
    seen: list[httpx.Request] = []

    class Spy(httpx.BaseTransport):
        def __init__(self):
            self.inner = SandboxTransport(sb)

        def handle_request(self, request):
            seen.append(request)
            return self.inner.handle_request(request)

    client = TinyClient(Settings(), transport=Spy(), base_url="http://sb/api2")
    page(client)
    assert TOKEN not in str(seen[0].url)
    assert seen[0].method == "POST"


def test_dates_go_to_tiny_in_brasilia_time():
    from datetime import datetime

    assert format_datetime(datetime(2024, 12, 5, 2, 30, tzinfo=UTC)) == "04/12/2024 23:30:00"


def test_a_moment_sent_as_a_date_is_brasilias_day_and_a_naive_one_is_utc():
    from datetime import date, datetime

    from core.tiny import BRASILIA, format_date, today_in_brasilia

    assert BRASILIA.key == "America/Sao_Paulo"
    late = datetime(2025, 6, 15, 1, 30, tzinfo=UTC)  # 22:30 on the 14th in Brasília
    assert format_date(late) == "14/06/2025"
    assert format_date(date(2025, 6, 15)) == "15/06/2025"
    assert format_datetime(datetime(2025, 6, 15, 1, 30)) == "14/06/2025 22:30:00"
    assert today_in_brasilia(late) == date(2025, 6, 14)


def test_a_listing_page_carries_tinys_clock_from_the_date_header():
    from datetime import datetime, timedelta

    sandbox = Sandbox(clock_skew=timedelta(minutes=-10))
    sandbox.add_account(TOKEN, AccountSpec(orders=20, days=10))
    served = page(client_for(sandbox)).served_at
    assert served is not None and served.tzinfo is not None
    tiny_now = sandbox.now()
    # HTTP dates have whole seconds; ours is 10 minutes ahead.
    assert tiny_now - timedelta(seconds=2) <= served <= tiny_now
    assert served < datetime.now(UTC) - timedelta(minutes=9)


@pytest.mark.parametrize("header", [None, "", "not a date"])
def test_an_answer_without_a_usable_date_header_has_no_tiny_clock(header):
    from core.tiny import answered_at

    headers = {} if header is None else {"Date": header}
    assert answered_at(httpx.Response(200, headers=headers)) is None
