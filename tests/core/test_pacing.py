"""Each Tiny account is paced to the limit its answers announce (`x-limit-api`), less
TINY_LIMIT_MARGIN; TINY_MIN_INTERVAL before the first answer and without one; a company's
`tinyCallsPerMinute` wins over both.

The limiter and the sandbox share a virtual clock that the limiter's sleeps move forward, so
minutes of Tiny's one-minute windows take a fraction of a second and the figures are exact.
The same pacing across processes, on Redis and in real time: tests/worker/test_redis_ratelimit.
"""

from __future__ import annotations

import pytest

from core.companies import set_pace
from core.errors import TinyRateLimitError
from core.ratelimit import LocalRateLimiter, paced_interval_us, parse_limit
from core.runs import create_run, get_run, start_run
from core.services import Services, build_services
from core.settings import Settings, SettingsError
from core.tiny import TinyClient
from sandbox import AccountSpec, Sandbox, SandboxTransport
from tests.support.services import fast_spec, make_settings, new_company, step_until_done

ORDERS = "pedidos.pesquisa.php"


class VirtualTime:
    """A monotonic clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def paced_client(
    sandbox: Sandbox, clock: VirtualTime, **settings: object
) -> tuple[TinyClient, LocalRateLimiter]:
    config = Settings(tiny_api_url="sandbox", **settings)  # type: ignore[arg-type]
    limiter = LocalRateLimiter(
        config.tiny_min_interval_ms,
        config.tiny_concurrency,
        margin=config.tiny_limit_margin,
        clock=clock,
        sleep=clock.sleep,
    )
    client = TinyClient(
        config,
        transport=SandboxTransport(sandbox),
        limiter=limiter,
        sleep=clock.sleep,
        base_url="http://sb/api2",
    )
    return client, limiter


def plan(calls_per_minute: int, **overrides: object) -> AccountSpec:
    """A small account on a Tiny plan: `calls_per_minute` in a one-minute window."""
    values: dict[str, object] = dict(orders=40, days=30, products=5, payables=5, receivables=5)
    return AccountSpec(**{**values, **overrides, "rate_limit_calls": calls_per_minute})


def call_for(client: TinyClient, clock: VirtualTime, token: str, seconds: float) -> int:
    """Call Tiny for `token` back to back for `seconds` of virtual time; how many calls."""
    began, calls = clock(), 0
    while clock() - began < seconds:
        client.call(token, ORDERS, account=f"key-{token}")
        calls += 1
    return calls


def utilisation(calls: int, calls_per_minute: int, seconds: float) -> float:
    """The share of the plan used: calls x the interval the plan allows / the time taken."""
    return calls * (60 / calls_per_minute) / seconds


def test_two_accounts_on_different_plans_are_each_paced_to_their_own():
    clock = VirtualTime()
    sandbox = Sandbox(monotonic=clock)
    sandbox.add_account("tok-30", plan(30))
    sandbox.add_account("tok-120", plan(120))
    client, limiter = paced_client(sandbox, clock)  # TINY_MIN_INTERVAL: the default 1000 ms

    minutes = 5
    figures = {}
    for token, limit in (("tok-30", 30), ("tok-120", 120)):
        began = clock()
        calls = call_for(client, clock, token, minutes * 60)
        figures[limit] = (calls, utilisation(calls, limit, clock() - began))

    assert sandbox.counters("tok-30").rate_limit_violations == 0
    assert sandbox.counters("tok-120").rate_limit_violations == 0
    for limit, (calls, used) in figures.items():
        # 5% under the plan (TINY_LIMIT_MARGIN), never over it.
        assert 0.9 <= used <= 1.0, (limit, calls, used)
    # The global pace (60 a minute) would have met code 6 at 30 and used half of 120.
    assert figures[120][0] > 2 * minutes * 60 * 0.9
    assert figures[30][0] < minutes * 30 + 1
    stats = limiter.stats(["key-tok-30", "key-tok-120"])
    assert stats["key-tok-30"].announced_limit == 30
    assert stats["key-tok-120"].pace_per_minute == pytest.approx(120 * 0.95, rel=1e-3)


def test_the_first_call_goes_at_the_starting_pace_and_the_next_at_the_announced_one():
    clock = VirtualTime()
    sandbox = Sandbox(monotonic=clock)
    sandbox.add_account("tok", plan(30))
    client, _ = paced_client(sandbox, clock, tiny_min_interval_ms=1000)
    began = clock()
    client.call("tok", ORDERS, account="key")  # nothing announced yet: no wait
    assert clock() == began
    client.call("tok", ORDERS, account="key")  # 30 a minute less 5%: 2.105 s after the first
    assert clock() - began == pytest.approx(paced_interval_us(30, 0.05) / 1e6)
    assert clock() - began == pytest.approx(60 / (30 * 0.95))


def test_without_the_header_the_account_keeps_tiny_min_interval():
    clock = VirtualTime()
    sandbox = Sandbox(monotonic=clock)
    sandbox.add_account("tok", plan(120, announce_limit=False))
    client, limiter = paced_client(sandbox, clock, tiny_min_interval_ms=1500)
    began = clock()
    calls = call_for(client, clock, "tok", 60)
    assert calls == 41  # at 0, 1.5, ..., 60
    assert clock() - began == pytest.approx(60)
    assert limiter.stats(["key-tok"])["key-tok"].announced_limit is None


def test_the_margin_is_configurable():
    clock = VirtualTime()
    sandbox = Sandbox(monotonic=clock)
    sandbox.add_account("tok", plan(120))
    client, _ = paced_client(sandbox, clock, tiny_limit_margin=0.2)
    began = clock()
    calls = call_for(client, clock, "tok", 300)
    assert utilisation(calls, 120, clock() - began) == pytest.approx(0.8, abs=0.01)


def test_a_bad_margin_is_refused_with_a_sentence():
    with pytest.raises(SettingsError, match="between 0 and 0.5"):
        Settings.from_env({"TINY_LIMIT_MARGIN": "0.6"}, dotenv=False)
    with pytest.raises(SettingsError, match="not a number"):
        Settings.from_env({"TINY_LIMIT_MARGIN": "five percent"}, dotenv=False)
    with pytest.raises(SettingsError, match="'id' or 'name'"):
        Settings.from_env({"METRICS_ACCOUNT_LABEL": "company"}, dotenv=False)
    assert Settings.from_env({"TINY_LIMIT_MARGIN": "0"}, dotenv=False).tiny_limit_margin == 0


def test_only_a_positive_whole_number_in_the_header_is_a_limit():
    assert parse_limit("120") == 120
    assert parse_limit(" 30 ") == 30
    for odd in (None, "", "0", "-5", "sixty", "60.5"):
        assert parse_limit(odd) is None, odd


def test_an_override_wins_over_the_header_and_none_follows_the_header_again():
    clock = VirtualTime()
    limiter = LocalRateLimiter(1000, clock=clock, sleep=clock.sleep)
    limiter.observe_limit("key", 120)
    limiter.override("key", 30)
    assert limiter.interval_of("key") == pytest.approx(60 / (30 * 0.95))
    limiter.observe_limit("key", 60)  # Tiny announces on every answer: the override stays
    assert limiter.interval_of("key") == pytest.approx(60 / (30 * 0.95))
    limiter.override("key", None)
    assert limiter.interval_of("key") == pytest.approx(60 / (60 * 0.95))
    assert limiter.interval_of("other") == 1.0


def test_refused_calls_are_counted_per_account_by_code():
    clock = VirtualTime()
    sandbox = Sandbox(monotonic=clock)
    sandbox.add_account("tok", plan(2, announce_limit=False))
    client, limiter = paced_client(sandbox, clock, tiny_min_interval_ms=0, tiny_max_retries=0)
    client.call("tok", ORDERS, account="key")
    client.call("tok", ORDERS, account="key")
    with pytest.raises(TinyRateLimitError, match="code 6"):
        client.call("tok", ORDERS, account="key")
    sandbox.fail_service("tok", ORDERS, 11)
    clock.sleep(61)
    with pytest.raises(TinyRateLimitError, match="code 11"):
        client.call("tok", ORDERS, account="key")
    stats = limiter.stats(["key"])["key"]
    assert stats.calls == 4
    assert dict(stats.refused) == {6: 1, 11: 1}


# -- a company's override, through the runs ------------------------------------------------
def _services(sqlite_url: str, sandbox: Sandbox, clock: VirtualTime) -> Services:
    settings = make_settings(sqlite_url, tiny_min_interval_ms=1000, tiny_concurrency=1)
    limiter = LocalRateLimiter(1000, 1, clock=clock, sleep=clock.sleep)
    return build_services(settings, transport=SandboxTransport(sandbox), limiter=limiter)


def _sync(services: Services, company_id: str, clock: VirtualTime) -> tuple[int, float]:
    """Run an incremental sync; its Tiny calls and the virtual time they took."""
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company_id, mode="incremental")
        start_run(session, run.id)
    began = clock()
    result = step_until_done(services, run.id)
    assert result.status == "DONE"
    with services.session_factory() as session:
        return get_run(session, run.id).tinyCalls, clock() - began


def test_a_company_s_calls_per_minute_wins_over_what_tiny_announces(sqlite_url):
    clock = VirtualTime()
    sandbox = Sandbox(monotonic=clock)
    services = _services(sqlite_url, sandbox, clock)
    announcing_120 = fast_spec(
        orders=60, days=40, products=6, payables=10, receivables=10,
        rate_limit_calls=120, announce_limit=True,
    )  # fmt: skip
    slowed = new_company(services, sandbox, "tok-slowed", announcing_120)
    free = new_company(services, sandbox, "tok-free", announcing_120)
    with services.session_factory() as session:
        set_pace(session, slowed, 30)
        session.commit()

    slowed_calls, slowed_seconds = _sync(services, slowed, clock)
    free_calls, free_seconds = _sync(services, free, clock)
    assert slowed_calls >= 20 and free_calls >= 20
    # A run's first call waits for no one; each next one waits the account's interval: 30 a
    # minute less the margin where Tiny says 120 (four times slower), and 120 less it.
    assert slowed_seconds / (slowed_calls - 1) == pytest.approx(60 / (30 * 0.95))
    assert free_seconds / (free_calls - 1) == pytest.approx(60 / (120 * 0.95))
    assert sandbox.counters().rate_limit_violations == 0

    with services.session_factory() as session:
        set_pace(session, slowed, None)  # follow Tiny again, from the next step
        session.commit()
    again_calls, again_seconds = _sync(services, slowed, clock)
    assert again_seconds / (again_calls - 1) == pytest.approx(60 / (120 * 0.95))
    services.close()
