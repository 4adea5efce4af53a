"""The Tiny ERP API v2 client: the envelope, its quirks, retries and pacing.

Every call goes through `TinyClient.call`, which is where httpx failures and Tiny's error
envelopes (always HTTP 200) become the exception tree of `core.errors`. Tokens travel in the
form body, never in a URL, so no request log line can carry one.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from core.errors import (
    TinyAuthError,
    TinyError,
    TinyPermanentError,
    TinyQueryTooLarge,
    TinyRateLimitError,
    TinyTransientError,
)
from core.ratelimit import NoRateLimiter, RateLimiter, parse_limit
from core.settings import Settings

if TYPE_CHECKING:
    from core.v3.access import V3Access

log = logging.getLogger(__name__)

#: Tiny's clock and calendar: every date and date-time sent to Tiny is Brasília's (the
#: `tzdata` package provides the zone where the OS has no database; no DST since 2019).
BRASILIA = ZoneInfo("America/Sao_Paulo")

#: Tiny's `codigo_erro` values and what they mean to us.
NO_RECORDS = 20
NO_SUCH_PAGE = 23
RECORD_NOT_FOUND = 32
RATE_LIMITED = 6
TOO_MANY_CONCURRENT = 11
#: The header of every answer that announces the account's limit, in calls a minute.
LIMIT_HEADER = "x-limit-api"
AUTH_CODES = {1: "the Tiny token is missing", 2: "the Tiny token is invalid"}
PERMANENT_CODES = {
    5: "the Tiny API is blocked for this account",
    8: "the company is blocked in Tiny",
    10: "a parameter Tiny requires is missing",
}
QUERY_TOO_LARGE = 21
TRANSIENT_CODES = {
    RATE_LIMITED: "too many Tiny calls in the last minute",
    TOO_MANY_CONCURRENT: "too many concurrent Tiny calls",
    35: "Tiny reported an unexpected error",
    99: "Tiny is under maintenance",
}


@dataclass
class Page:
    """One page of a Tiny listing; `served_at` is Tiny's clock (its HTTP `Date`) when known."""

    records: list[dict[str, Any]]
    page: int
    total_pages: int
    served_at: datetime | None = None

    @property
    def is_last(self) -> bool:
        return self.page >= self.total_pages


@dataclass
class CallStats:
    """What a client did: calls made (attempts), retries by reason."""

    calls: int = 0
    retries: Counter[str] = field(default_factory=Counter)


RetryHook = Callable[[str, int, TinyError, float], None]


def walk_pages(fetch: Callable[[int], Page], first: int = 1) -> Iterator[Page]:
    """Fetch pages `first`, `first + 1`, ... and yield each, until the last or an empty one.

    The one paging loop: the client's `iter_pages` and the sync modules' `paged` both walk
    listings with it. Pages are fetched lazily, so a caller that stops iterating (out of time)
    makes no further call.
    """
    number = first
    while True:
        page = fetch(number)
        yield page
        if page.is_last or not page.records:
            return
        number += 1


class TinyClient:
    """A Tiny API v2 client for any number of accounts (the token is given per call)."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        base_url: str | None = None,
    ):
        self.settings = settings
        url = base_url or settings.tiny_api_url
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/",
            transport=transport,
            timeout=settings.tiny_timeout_seconds,
            headers={"User-Agent": "tinysync/0.1"},
        )
        self._limiter: RateLimiter = limiter or NoRateLimiter()
        self._sleep = sleep
        self.stats = CallStats()
        #: The v3 clients beside this one (`core.services.build_services` sets them), for
        #: companies that use Tiny API v3.
        self.v3: V3Access | None = None

    def close(self) -> None:
        """Close the HTTP connection pool (and the v3 ones beside it)."""
        self._http.close()
        if self.v3 is not None:
            self.v3.close()

    def pace(self, account: str, calls_per_minute: int | None) -> None:
        """Pace `account` to this many calls a minute (a company's override; None: Tiny's)."""
        self._limiter.override(account, calls_per_minute)

    # -- the one place a request is made -------------------------------------------------
    def call(
        self,
        token: str,
        service: str,
        params: dict[str, Any] | None = None,
        *,
        account: str,
        on_retry: RetryHook | None = None,
    ) -> dict[str, Any]:
        """Call `service` and return its `retorno`; retries transient failures with back-off.

        Codes 20, 23 and 32 come back as a `retorno` with `status == "Erro"` for the caller
        to read; every other error raises.
        """
        return self._call(token, service, params, account=account, on_retry=on_retry)[0]

    def _call(
        self,
        token: str,
        service: str,
        params: dict[str, Any] | None = None,
        *,
        account: str,
        on_retry: RetryHook | None = None,
    ) -> tuple[dict[str, Any], datetime | None]:
        """`call`, with Tiny's clock at the answer (its HTTP `Date`, None without one)."""
        attempts = self.settings.tiny_max_retries + 1

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if on_retry is not None and isinstance(exc, TinyError):
                wait = state.upcoming_sleep
                on_retry(service, state.attempt_number, exc, wait)
            if isinstance(exc, TinyError):
                self.stats.retries[_reason(exc)] += 1

        retrying = Retrying(
            retry=retry_if_exception_type(TinyTransientError),
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        result: tuple[dict[str, Any], datetime | None] = retrying(
            self._attempt, token, service, params or {}, account
        )
        return result

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        base = self.settings.tiny_retry_base_seconds
        if isinstance(exc, TinyRateLimitError):
            return exc.wait_seconds
        backoff = base * (2 ** (state.attempt_number - 1))
        if isinstance(exc, TinyTransientError) and exc.code == 99:
            backoff *= 10  # maintenance lasts minutes, not seconds
        return backoff * (1 + random.random() * 0.25)

    def _attempt(
        self, token: str, service: str, params: dict[str, Any], account: str
    ) -> tuple[dict[str, Any], datetime | None]:
        data = {**{k: _param(v) for k, v in params.items() if v is not None}}
        data.update(token=token, formato="json")
        with self._limiter.slot(account):
            self.stats.calls += 1
            try:
                response = self._http.post(service, data=data)
            except httpx.TimeoutException as exc:
                raise TinyTransientError(
                    f"Tiny did not answer {service} in time", service=service
                ) from exc
            except httpx.TransportError as exc:
                raise TinyTransientError(
                    f"could not reach Tiny for {service}: {type(exc).__name__}", service=service
                ) from exc
        announced = parse_limit(response.headers.get(LIMIT_HEADER))
        if announced is not None:
            self._limiter.observe_limit(account, announced)
        try:
            return self._parse(service, response), answered_at(response)
        except TinyRateLimitError as exc:
            self._limiter.refused(account, exc.code or RATE_LIMITED)
            raise

    def _parse(self, service: str, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 500:
            raise TinyTransientError(
                f"Tiny answered HTTP {response.status_code} for {service}", service=service
            )
        if response.status_code >= 400:
            raise TinyPermanentError(
                f"Tiny answered HTTP {response.status_code} for {service}", service=service
            )
        try:
            body = json.loads(response.content, parse_float=Decimal)
            retorno = body["retorno"]
            if not isinstance(retorno, dict):
                raise TypeError("retorno is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise TinyTransientError(
                f"Tiny answered {service} with a body that is not the expected JSON",
                service=service,
            ) from exc
        if str(retorno.get("status", "")).upper() == "OK":
            return retorno
        code = _int(retorno.get("codigo_erro"))
        if code in (NO_RECORDS, NO_SUCH_PAGE, RECORD_NOT_FOUND):
            return retorno
        detail = _first_error(retorno)
        if code in AUTH_CODES:
            raise TinyAuthError(f"{AUTH_CODES[code]} (code {code})", code=code, service=service)
        if code == RATE_LIMITED:
            raise TinyRateLimitError(
                f"{TRANSIENT_CODES[code]} (code 6)",
                wait_seconds=self.settings.tiny_rate_limit_backoff_seconds,
                code=code,
                service=service,
            )
        if code == TOO_MANY_CONCURRENT:
            raise TinyRateLimitError(
                f"{TRANSIENT_CODES[code]} (code 11)",
                wait_seconds=self.settings.tiny_retry_base_seconds,
                code=code,
                service=service,
            )
        if code in TRANSIENT_CODES:
            raise TinyTransientError(
                f"{TRANSIENT_CODES[code]} (code {code})", code=code, service=service
            )
        if code == QUERY_TOO_LARGE:
            raise TinyQueryTooLarge(
                f"Tiny says {service} matches too many records (code 21); narrow the period",
                code=code,
                service=service,
            )
        if code in PERMANENT_CODES:
            raise TinyPermanentError(
                f"{PERMANENT_CODES[code]} in {service} (code {code}): {detail}",
                code=code,
                service=service,
            )
        raise TinyPermanentError(
            f"Tiny refused {service} (code {code if code is not None else '?'}): {detail}",
            code=code,
            service=service,
        )

    # -- listings and records ------------------------------------------------------------
    def list_page(
        self,
        token: str,
        service: str,
        list_key: str,
        item_key: str,
        params: dict[str, Any],
        page: int,
        *,
        account: str,
        on_retry: RetryHook | None = None,
    ) -> Page:
        """Fetch one page of a listing; no records or no such page give an empty last page."""
        retorno, served_at = self._call(
            token, service, {**params, "pagina": page}, account=account, on_retry=on_retry
        )
        if str(retorno.get("status", "")).upper() != "OK":
            last = page - 1 if page > 1 else 0
            return Page(records=[], page=page, total_pages=last, served_at=served_at)
        total = _int(retorno.get("numero_paginas")) or page
        items = retorno.get(list_key) or []
        records = [entry.get(item_key, entry) for entry in items if isinstance(entry, dict)]
        number = _int(retorno.get("pagina")) or page
        return Page(records=records, page=number, total_pages=total, served_at=served_at)

    def iter_pages(
        self,
        token: str,
        service: str,
        list_key: str,
        item_key: str,
        params: dict[str, Any],
        *,
        account: str,
        start_page: int = 1,
        on_retry: RetryHook | None = None,
    ) -> Iterator[Page]:
        """Yield pages with records from `start_page` until `numero_paginas`."""

        def fetch(number: int) -> Page:
            return self.list_page(
                token,
                service,
                list_key,
                item_key,
                params,
                number,
                account=account,
                on_retry=on_retry,
            )

        for result in walk_pages(fetch, start_page):
            if not result.records:
                return
            yield result

    def get_record(
        self,
        token: str,
        service: str,
        record_key: str,
        record_id: int,
        *,
        account: str,
        on_retry: RetryHook | None = None,
    ) -> dict[str, Any] | None:
        """Fetch one record by id; None when Tiny says it does not exist (code 32)."""
        retorno = self.call(token, service, {"id": record_id}, account=account, on_retry=on_retry)
        if str(retorno.get("status", "")).upper() != "OK":
            return None
        record = retorno.get(record_key)
        return record if isinstance(record, dict) else None


# -- helpers (Tiny's values become stored ones in core.values) ----------------------------
def _reason(exc: TinyError) -> str:
    if exc.code is not None:
        return f"code_{exc.code}"
    return type(exc).__name__


def _first_error(retorno: dict[str, Any]) -> str:
    erros = retorno.get("erros") or []
    for entry in erros if isinstance(erros, list) else [erros]:
        if isinstance(entry, dict) and entry.get("erro"):
            return str(entry["erro"])
        if isinstance(entry, str):
            return entry
    return "no message"


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    return value


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def answered_at(response: httpx.Response) -> datetime | None:
    """Tiny's clock at an answer: its HTTP `Date` header (UTC), None when absent or garbled."""
    header = response.headers.get("date")
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000": RFC 5322's "UTC, origin unknown"
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def in_brasilia(value: datetime) -> datetime:
    """A moment on Tiny's wall clock (a naive value is taken as UTC, as stored)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BRASILIA)


def today_in_brasilia(now: datetime | None = None) -> date:
    """Today on Tiny's calendar (Brasília), the calendar of its order and bill dates."""
    return in_brasilia(now or datetime.now(UTC)).date()


def format_date(value: date) -> str:
    """`dd/mm/yyyy`, as Tiny wants dates; a moment is first taken to Brasília's calendar."""
    if isinstance(value, datetime):
        value = in_brasilia(value).date()
    return value.strftime("%d/%m/%Y")


def format_datetime(value: datetime) -> str:
    """`dd/mm/yyyy hh:mm:ss` in Brasília time, as Tiny's update filters want."""
    return in_brasilia(value).strftime("%d/%m/%Y %H:%M:%S")
