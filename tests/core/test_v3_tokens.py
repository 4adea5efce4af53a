"""A v3 company's token pair: refreshed ahead of expiry, once however many executors need it,
renewed once on a 401; a lapsed refresh token makes the company "precisa reconectar", its next
run fails at once with that sentence (notification included), and connecting again restores it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from core.errors import RECONNECT_SENTENCE, TinyReconnectNeeded
from core.models import Company, utcnow
from core.notify import payload
from core.runs import RunStatus, create_run, get_run, start_incremental_runs, start_run
from tests.support.services import step_until_done
from tests.support.v3 import connect, new_v3_company, v3_access

TOKEN = "tok-v3-tokens"


def _renewer(services):
    return v3_access(services).renewer(services.session_factory, services.settings)


def _company(services, company_id: str) -> Company:
    with services.session_factory() as session:
        company = session.get(Company, company_id)
        assert company is not None
        return company


def _expire_access(services, company_id: str, left: timedelta = timedelta(minutes=-1)) -> None:
    with services.session_factory() as session:
        session.execute(
            update(Company)
            .where(Company.id == company_id)
            .values(v3AccessExpiresAt=utcnow() + left)
        )
        session.commit()


def _run(services, company_id: str):
    with services.session_factory() as session:
        run = create_run(session, services.settings, company_id=company_id, mode="incremental")
        start_run(session, run.id)
    step_until_done(services, run.id)
    with services.session_factory() as session:
        return get_run(session, run.id)


def test_a_token_with_less_than_the_margin_left_is_refreshed_once(services, sandbox):
    company, client = new_v3_company(services, sandbox, TOKEN)
    renewer = _renewer(services)
    first = renewer.access_token(company)
    assert sandbox.oauth_counters(client)["refresh_token"] == 0
    _expire_access(services, company, left=timedelta(minutes=5))  # under the 10-minute margin
    second = renewer.access_token(company)
    assert second != first
    assert renewer.access_token(company) == second
    assert sandbox.oauth_counters(client)["refresh_token"] == 1
    stored = _company(services, company)
    assert stored.v3AccessExpiresAt is not None and stored.v3AccessExpiresAt > utcnow()


def test_executors_needing_a_refresh_at_once_make_one_refresh_and_share_it(services, sandbox):
    company, client = new_v3_company(services, sandbox, TOKEN)
    _expire_access(services, company)
    barrier = threading.Barrier(4)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def executor() -> None:
        renewer = _renewer(services)
        barrier.wait()
        try:
            tokens.append(renewer.access_token(company))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=executor) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(tokens) == 4 and len(set(tokens)) == 1
    assert sandbox.oauth_counters(client)["refresh_token"] == 1


def test_a_401_is_renewed_once_and_a_second_one_needs_a_person(services, sandbox):
    company, client = new_v3_company(services, sandbox, TOKEN)
    access = v3_access(services)
    bearer = _renewer(services).bearer(company)
    account = _company(services, company).tinyAccountKey
    sandbox.fail_v3(TOKEN, "produtos", 401, times=1)
    page = access.client.list_page(bearer, "produtos", {}, 0, account=account)
    assert page.records
    assert sandbox.oauth_counters(client)["refresh_token"] == 1
    sandbox.fail_v3(TOKEN, "produtos", 401, times=2)
    with pytest.raises(TinyReconnectNeeded):
        access.client.list_page(bearer, "produtos", {}, 0, account=account)
    assert _company(services, company).needsReconnect


def test_a_lapsed_refresh_token_fails_the_next_run_at_once_until_reconnected(services, sandbox):
    company, client = new_v3_company(services, sandbox, TOKEN)
    sandbox.clock_skew = timedelta(days=2)  # nothing refreshed the pair for two days
    _expire_access(services, company)
    with pytest.raises(TinyReconnectNeeded):
        _renewer(services).access_token(company)
    stored = _company(services, company)
    assert stored.needsReconnect and stored.needsReconnectReason
    calls_before = sandbox.oauth_counters(client)["refresh_token"]

    run = _run(services, company)
    assert run.status == RunStatus.FAILED
    assert RECONNECT_SENTENCE in (run.errorMessage or "")
    assert run.tinyCalls == 0
    assert sandbox.oauth_counters(client)["refresh_token"] == calls_before  # no call at all
    sent = payload(run, stored)
    assert "precisa reconectar" in sent["errorMessage"] and sent["needsReconnect"] is True

    connect(services, sandbox, company, client)
    assert not _company(services, company).needsReconnect
    again = _run(services, company)
    assert again.status == RunStatus.DONE, again.errorMessage


def test_beat_and_cron_skip_a_company_that_needs_reconnecting_until_it_is_connected(
    services, sandbox
):
    company, client = new_v3_company(services, sandbox, TOKEN)
    sandbox.clock_skew = timedelta(days=2)
    _expire_access(services, company)
    with pytest.raises(TinyReconnectNeeded):
        _renewer(services).access_token(company)
    with services.session_factory() as session:
        outcome = start_incremental_runs(session, services.settings, triggered_by="beat")
    assert (company, None) in outcome.skipped
    assert company not in {run.companyId for run in outcome.created}

    connect(services, sandbox, company, client)
    with services.session_factory() as session:
        outcome = start_incremental_runs(session, services.settings, triggered_by="beat")
    assert company in {run.companyId for run in outcome.created}


def test_a_refresh_token_refused_mid_run_fails_the_module_with_the_sentence(services, sandbox):
    company, _client = new_v3_company(services, sandbox, TOKEN)
    sandbox.fail_v3(TOKEN, None, 401, times=None)  # every call refused, renewed token too
    run = _run(services, company)
    sandbox.clear_faults()
    assert run.status == RunStatus.FAILED
    assert "precisa reconectar" in (run.errorMessage or "")
    assert _company(services, company).needsReconnect


def test_secrets_rotate_re_encrypts_the_app_secret_and_the_pair(services, sandbox):
    from core.companies import rotate_tokens
    from core.crypto import decrypt_token

    company, _client = new_v3_company(services, sandbox, TOKEN)
    before = _company(services, company)
    access = decrypt_token(before.v3AccessTokenEncrypted or "", services.settings.secret_keys)
    rotated = services.settings.with_(
        secret_key="a-new-secret-key-of-enough-length-0123",
        secret_key_fallbacks=services.settings.secret_key,
    )
    with services.session_factory() as session:
        assert rotate_tokens(session, rotated) == (1, 0)
        session.commit()
    after = _company(services, company)
    only_new = ("a-new-secret-key-of-enough-length-0123",)
    assert decrypt_token(after.v3AccessTokenEncrypted or "", only_new) == access
    assert decrypt_token(after.v3ClientSecretEncrypted or "", only_new)
    assert decrypt_token(after.v3RefreshTokenEncrypted or "", only_new)
