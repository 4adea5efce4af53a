"""The Sandbox: a WSGI app that answers like Tiny API v2 (v3: sandbox.v3), limits and faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

from werkzeug.wrappers import Request

from sandbox.account import Account
from sandbox.changes import ChangeLog, Churn
from sandbox.common import to_us
from sandbox.data import AccountSpec
from sandbox.envelope import MESSAGES, ApiError, error, ok, render
from sandbox.faults import (
    FAULT_HEADER,
    IN_PROCESS_KEY,
    FaultInjector,
    Faults,
    malformed_body,
    server_error,
)
from sandbox.limits import Counters, CounterStore, InFlight, RateLimiter, WindowLimiter
from sandbox.oauth import OAUTH_MARK, OAuthApp, OAuthServer
from sandbox.oddities import apply_planted, check_value
from sandbox.services import SERVICES, canonical_service
from sandbox.truth import Truth, build_truth, open_bills
from sandbox.v3 import V3_MARK, V3Face

__all__ = ["FAULT_HEADER", "IN_PROCESS_KEY", "Sandbox"]

# A plausible start of a real answer, for malformed bodies (faults come before the data).
_SAMPLE_BODY = (
    b'{"retorno":{"status_processamento":"3","status":"OK","pagina":"1","numero_paginas":"1",'
    b'"pedidos":[{"pedido":{"id":1,"numero":1,"data_pedido":"01/01/2024","valor":"10.00"}}]}}'
)

StartResponse = Callable[..., Any]
Response = tuple[int, list[tuple[str, str]], bytes]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Sandbox:
    """A faithful fake of Tiny API v2; call it as a WSGI app: sb(environ, start_response)."""

    def __init__(
        self,
        clock: Callable[[], datetime] | None = None,
        *,
        monotonic: Callable[[], float] | None = None,
        timeout_sleep_seconds: float = 3.0,
        latency_seconds: float = 0.0,
        auto_accounts: bool = False,
        default_spec: AccountSpec | None = None,
        clock_skew: timedelta = timedelta(0),
    ) -> None:
        self.clock = clock or _utc_now
        # Tiny's clock is not the client's: now() = clock() + clock_skew (negative = behind).
        self.clock_skew = clock_skew
        self.timeout_sleep_seconds = timeout_sleep_seconds
        # Extra time each accepted call spends "processing"; makes overlap (code 11) testable.
        self.latency_seconds = latency_seconds
        self.auto_accounts = auto_accounts
        self.default_spec = default_spec or AccountSpec()
        self._accounts: dict[str, Account] = {}
        self._accounts_lock = threading.Lock()
        self._global_faults = FaultInjector(Faults())
        self._token_faults: dict[str, FaultInjector] = {}
        self._failed: dict[tuple[str | None, str], int] = {}
        self._counters = CounterStore()
        self._rate = RateLimiter(monotonic or time.monotonic)
        self._in_flight = InFlight()
        # API v3 (sandbox.v3, sandbox.oauth): its own read budget per account, same data.
        self._v3_rate = WindowLimiter(monotonic or time.monotonic)
        self._oauth = OAuthServer(self.now_us)
        self._v3 = V3Face(self)

    # -- clock ---------------------------------------------------------------------------
    def now(self) -> datetime:
        """The sandbox's (Tiny's) current moment: the clock plus clock_skew, in UTC."""
        return (self.clock() + self.clock_skew).astimezone(UTC)

    def now_us(self) -> int:
        """now() in epoch microseconds."""
        return to_us(self.now())

    # -- configuration -------------------------------------------------------------------
    def add_account(self, token: str, spec: AccountSpec | None = None) -> None:
        """Create (or replace, with fresh data) the account for `token`."""
        if not token:
            raise ValueError("token must be non-empty")
        account = Account(token, spec or self.default_spec, self.now_us())
        with self._accounts_lock:
            self._accounts[token] = account
        self._rate.reset(token)
        self._v3_rate.reset(token)

    def ensure_account(self, token: str, spec: AccountSpec | None = None) -> None:
        """Add the account for `token` unless it exists."""
        with self._accounts_lock:
            if token in self._accounts:
                return
            self._accounts[token] = Account(token, spec or self.default_spec, self.now_us())

    def has_account(self, token: str) -> bool:
        """Whether `token` is a known account."""
        return token in self._accounts

    def account(self, token: str) -> Account:
        """The account of `token` (KeyError with a clear message when unknown)."""
        try:
            return self._accounts[token]
        except KeyError:
            raise KeyError(f"no sandbox account for token {token!r}") from None

    @property
    def faults(self) -> Faults:
        """Global fault probabilities (tokens with set_faults() use their own)."""
        return self._global_faults.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._global_faults = FaultInjector(faults)

    def set_faults(self, token: str, faults: Faults) -> None:
        """Fault probabilities for one token, overriding the global ones."""
        self._token_faults[token] = FaultInjector(faults)

    def fail_service(self, token: str | None, service: str, code: int) -> None:
        """Make every call to `service` (for `token`, or any token when None) answer `code`."""
        if code not in MESSAGES:
            raise ValueError(f"unknown Tiny error code {code}")
        name = canonical_service(service)
        if name not in SERVICES:
            raise ValueError(f"unknown service {service!r}")
        self._failed[(token, name)] = code

    def clear_faults(self) -> None:
        """Remove global and per-token faults and failed services."""
        self._global_faults = FaultInjector(Faults())
        self._token_faults.clear()
        self._failed.clear()
        self._v3.clear()

    def _injector(self, token: str) -> FaultInjector:
        return self._token_faults.get(token, self._global_faults)

    # -- API v3 and its OAuth ------------------------------------------------------------
    def add_oauth_app(
        self, client_id: str, client_secret: str, redirect_uri: str, token: str
    ) -> None:
        """Register a v3 app whose tokens read the account of the v2 `token`."""
        if not self.has_account(token) and not self.auto_accounts:
            raise KeyError(f"no sandbox account for token {token!r}")
        self._oauth.add_app(OAuthApp(client_id, client_secret, redirect_uri, token))

    @property
    def oauth_auto_approve(self) -> bool:
        """Whether the authorisation page approves at once (redirects on the GET)."""
        return self._oauth.auto_approve

    @oauth_auto_approve.setter
    def oauth_auto_approve(self, value: bool) -> None:
        self._oauth.auto_approve = bool(value)

    def oauth_lifetimes(
        self, access: float | None = None, refresh: float | None = None, code: float | None = None
    ) -> None:
        """Seconds access tokens, refresh tokens and codes live (default 4 h, 1 day, 60 s)."""
        self._oauth.set_lifetimes(access, refresh, code)

    def oauth_counters(self, client_id: str) -> dict[str, int]:
        """Token requests of a client per grant: {"authorization_code": n, "refresh_token": n}."""
        return self._oauth.counters(client_id)

    def fail_v3(
        self,
        token: str | None,
        resource: str | None,
        status: int,
        times: int | None = None,
        retry_after: int = 1,
    ) -> None:
        """Answer `status` to v3 calls on `resource` ("pedidos", "estoque"..., None: all).

        For `token`'s account (None: every account), the next `times` calls (None: until
        clear_faults); 429 and 503 carry `Retry-After: retry_after`.
        """
        self._v3.fail(token, resource, status, times, retry_after)

    # -- data ----------------------------------------------------------------------------
    def evolve(
        self, token: str, new_orders: int = 5, status_changes: int = 5, payments: int = 5
    ) -> None:
        """Business goes on: new orders today, order status changes, open bills paid."""
        self.account(token).evolve(self.now_us(), new_orders, status_changes, payments)

    def truth(self, token: str, start: date, end: date) -> Truth:
        """What a correct sync of [start, end] must hold for `token`, as it stands now."""
        return build_truth(self.account(token), start, end)

    def open_bills(self, token: str, kind: str) -> dict[int, dict[str, Any]]:
        """Every bill still owed of `kind` ('pagar' or 'receber'), whatever its emission."""
        if kind not in ("pagar", "receber"):
            raise ValueError("kind must be 'pagar' or 'receber'")
        return open_bills(self.account(token), kind)

    # -- changes while a client reads ------------------------------------------------------
    def set_churn(self, token: str, churn: Churn | None) -> None:
        """Apply `churn`'s batches to `token`'s data on schedule from the next call (None: stop)."""
        self.account(token).set_churn(churn)

    def changes(self, token: str) -> ChangeLog:
        """A snapshot of the changes made to `token`'s data (scheduled, explicit, evolve)."""
        account = self.account(token)
        with account.lock:
            return account.log.copy()

    def _change(self, token: str, method: str, *args: Any) -> Any:
        account = self.account(token)
        with account.lock:
            return getattr(account, method)(self.now_us(), *args)

    def pay_bill(self, token: str, bill_id: int) -> None:
        """Pay an open payable or receivable in full today."""
        self._change(token, "pay_bill", bill_id)

    def partly_pay_bill(self, token: str, bill_id: int, amount: Decimal | None = None) -> Decimal:
        """Pay part of an open bill today (default half its saldo); returns the amount paid."""
        return self._change(token, "partly_pay_bill", bill_id, amount)

    def cancel_bill(self, token: str, bill_id: int) -> None:
        """Cancel an open bill (situacao cancelada)."""
        self._change(token, "cancel_bill", bill_id)

    def delete_bill(self, token: str, bill_id: int) -> None:
        """Delete a bill: 32 to conta.*.obter, absent from every listing."""
        self._change(token, "delete_bill", bill_id)

    def cancel_order(self, token: str, order_id: int) -> None:
        """Set an order's situacao to Cancelado."""
        self._change(token, "cancel_order", order_id)

    def delete_order(self, token: str, order_id: int) -> None:
        """Delete an order: 32 to pedido.obter, absent from every listing."""
        self._change(token, "delete_order", order_id)

    def add_order(self, token: str, dated: datetime | date | None = None) -> int:
        """Add an order now, dated `dated` (a moment, or noon in Brasília of a date); its id."""
        created = None
        if isinstance(dated, datetime):
            created = to_us(dated)
        elif isinstance(dated, date):
            created = to_us(datetime(dated.year, dated.month, dated.day, 15, tzinfo=UTC))
        return self._change(token, "add_order", created)

    def move_stock(
        self, token: str, product_id: int, delta: Decimal | int, deposito: str = "Geral"
    ) -> None:
        """Add `delta` to one deposit of a product (enters lista.atualizacoes.estoque)."""
        self._change(token, "move_stock", product_id, delta, deposito)

    def set_product_situacao(self, token: str, product_id: int, situacao: str) -> None:
        """Activate (A), deactivate (I) or delete (E) a product."""
        self._change(token, "set_product_situacao", product_id, situacao)

    def add_product(self, token: str, created_at: datetime | None = None) -> int:
        """Add an active product created at `created_at` (aware; default now); its id."""
        created = to_us(created_at) if created_at is not None else None
        return self._change(token, "add_product", created)

    # -- odd values ----------------------------------------------------------------------
    def plant(self, token: str, record_id: int, field: str, value: Any) -> None:
        """Serve `value` verbatim as `field` of record `record_id` wherever it is shown."""
        account = self.account(token)
        with account.lock:
            account.planted.setdefault(record_id, {})[field] = check_value(value)

    def plant_in_listing(
        self, token: str, service: str, field: str, value: Any, position: int = 0, **params: Any
    ) -> int:
        """Plant into the record at `position` of a listing page (params as Tiny takes them).

        Returns the record's id. Looking does not count as a call nor consume any queue.
        """
        return self.plant_values(token, service, field, [value], position, **params)[0]

    def plant_values(
        self,
        token: str,
        service: str,
        field: str,
        values: Iterable[Any],
        position: int = 0,
        **params: Any,
    ) -> list[int]:
        """Plant each value into successive records of a listing page from `position`; ids."""
        account = self.account(token)
        with account.lock:
            served = dict(account.stock_served)
            try:
                payload = SERVICES[canonical_service(service)](
                    account, {k: str(v) for k, v in params.items()}, self.now_us()
                )
            except ApiError as exc:
                raise ValueError(f"{service} answers code {exc.code}: {exc.message}") from None
            finally:
                account.stock_served = served
            (records,) = (v for v in payload.values() if isinstance(v, list))
            ids = [next(iter(w.values()))["id"] for w in records[position:]]
            values = list(values)
            if len(values) > len(ids):
                raise ValueError(f"the page has {len(ids)} records from position {position}")
            for record_id, value in zip(ids, values, strict=False):
                account.planted.setdefault(record_id, {})[field] = check_value(value)
            return ids[: len(values)]

    def planted(self, token: str) -> dict[int, dict[str, Any]]:
        """Planted values of `token`: record id -> {field: value}."""
        account = self.account(token)
        with account.lock:
            return {k: dict(v) for k, v in account.planted.items()}

    def plant_v3(self, token: str, record_id: int, field: str, value: Any) -> None:
        """Serve `value` as v3 `field` ("a.b" nests) of a record; sandbox.v3.RawJson verbatim."""
        self._v3.plant(self.account(token).token, record_id, field, value)

    def planted_v3(self, token: str) -> dict[int, dict[str, Any]]:
        """v3 plants of `token`: record id -> {field: value} (Truth.planted holds v2's)."""
        return self._v3.planted(token)

    def clear_planted(self, token: str) -> None:
        """Serve every record's real values again (v2 and v3)."""
        account = self.account(token)
        with account.lock:
            account.planted.clear()
        self._v3.clear_planted(token)

    def counters(self, token: str | None = None) -> Counters:
        """Counters of one token, or summed over all tokens."""
        return self._counters.snapshot(token)

    def reset_counters(self) -> None:
        """Zero all counters, OAuth token requests included (rate-limit windows stay)."""
        self._counters.reset()
        self._oauth.reset_counters()

    def reset_limits(self, token: str | None = None) -> None:
        """Forget the calls in the rate-limit window (v2 and v3) of one token, or of all."""
        self._rate.reset(token)
        self._v3_rate.reset(token)

    # -- WSGI ----------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        status, headers, body = self._respond(environ)
        headers.append(("Content-Length", str(len(body))))
        headers.append(("Date", format_datetime(self.now(), usegmt=True)))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [body]

    def _respond(self, environ: dict[str, Any]) -> Response:
        path = environ.get("PATH_INFO", "")
        if OAUTH_MARK in path:
            return self._oauth.respond(Request(environ))
        if V3_MARK in path:
            return self._v3.respond(environ, bool(environ.get(IN_PROCESS_KEY)))
        request = Request(environ)
        params = {key: value for key, value in request.values.items()}
        service = canonical_service(environ.get("PATH_INFO", ""))
        token = (params.get("token") or "").strip()
        as_json = (params.get("formato") or "").strip().lower() == "json"
        sequence = self._counters.call(token, service)
        headers: list[tuple[str, str]] = []

        def answer(envelope: dict[str, Any], code: int | None) -> Response:
            self._counters.answer(token, code)
            body, content_type = render(envelope, as_json)
            return 200, [("Content-Type", content_type), *headers], body

        def fail(code: int, message: str | None = None) -> Response:
            # Tiny is inconsistent about codigo_erro's type; alternate so clients handle both.
            envelope = error(code, message or MESSAGES[code], code_as_text=sequence % 2 == 0)
            return answer(envelope, code)

        handler = SERVICES.get(service)
        if handler is None:
            return fail(4, f"{MESSAGES[4]}: serviço {service!r} não existe")
        if not token:
            return fail(1)
        if token not in self._accounts and self.auto_accounts:
            self.ensure_account(token)
        account = self._accounts.get(token)
        if account is None:
            return fail(2)
        spec = account.spec
        if spec.announce_limit:
            headers.append(("x-limit-api", str(spec.calls_per_minute)))
        in_flight = self._in_flight.enter(token)
        try:
            self._counters.in_flight(token, in_flight)
            if in_flight > spec.max_concurrent:
                return fail(11)
            if not self._rate.acquire(token, spec.rate_limit_calls, spec.rate_limit_window_seconds):
                return fail(6)
            failed = self._failed.get((token, service), self._failed.get((None, service)))
            if failed is not None:
                return fail(failed)
            kind, rng = self._injector(token).draw()
            if kind is not None:
                self._counters.fault(token, kind)
            if kind == "5xx":
                status, page = server_error(rng)
                return status, [("Content-Type", "text/html")], page
            if kind in ("code35", "code99"):
                return fail(35 if kind == "code35" else 99)
            if kind == "malformed":
                return (
                    200,
                    [("Content-Type", "application/json"), *headers],
                    malformed_body(rng, _SAMPLE_BODY),
                )
            if kind == "timeout":
                if environ.get(IN_PROCESS_KEY):
                    return 200, [(FAULT_HEADER, "timeout"), *headers], b""
                # Over a socket the client really waits; if it waits long enough it gets data.
                time.sleep(self.timeout_sleep_seconds)
            if self.latency_seconds:
                time.sleep(self.latency_seconds)
            try:
                with account.lock:
                    now_us = self.now_us()
                    account.before_call(now_us)
                    payload = handler(account, params, now_us)
                    apply_planted(payload, account.planted)
            except ApiError as exc:
                return fail(exc.code, exc.message)
            return answer(ok(payload), None)
        finally:
            self._in_flight.leave(token)
