"""The Tiny API v3 client: Bearer calls, limit/offset listings, limits, retries, exact money.

Every call goes through `V3Client.get`, the one place where httpx failures and v3's HTTP
status codes become the exception tree of `core.errors`:

- 200: the JSON body, numbers parsed as `Decimal` from the text (`parse_float=Decimal`), so
  money never passes through float;
- 429 and 503: `TinyRateLimitError` waiting `Retry-After` (else `X-RateLimit-Reset`, else
  TINY_RATE_LIMIT_BACKOFF_SECONDS), retried like v2's code 6;
- other 5xx, timeouts, unreachable, a body that is not JSON: `TinyTransientError`, retried;
- 401: the access token is renewed once (`Bearer.renew`) and the call made again; a second
  401 is `TinyReconnectNeeded` (only a person can authorise the app again);
- 404 on a record: None (as v2's code 32); other 4xx: `TinyPermanentError` with v3's
  `mensagem`.

Every answer's `X-RateLimit-Limit` (calls a minute) is handed to the per-account pacer,
`limiter.observe_limit(account, limit)`, the one v2's `x-limit-api` feeds. Tokens travel in
the Authorization header only, never in a URL or a log line.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from core.errors import (
    TinyError,
    TinyPermanentError,
    TinyRateLimitError,
    TinyReconnectNeeded,
    TinyTransientError,
)
from core.ratelimit import NoRateLimiter, RateLimiter
from core.settings import Settings
from core.tiny import CallStats, Page, RetryHook, answered_at

log = logging.getLogger(__name__)

#: v3's page size: its maximum and default (`limit`).
PAGE_LIMIT = 100
RATE_STATUSES = (429, 503)


class Bearer(Protocol):
    """Where a v3 call gets its access token, and a new one when Tiny refused it (401)."""

    def token(self) -> str:
        """A valid access token (refreshed ahead of its expiry)."""
        ...

    def renew(self, refused: str) -> str:
        """A new access token after Tiny answered 401 to `refused`; TinyReconnectNeeded if none."""
        ...

    def lost(self, reason: str) -> TinyReconnectNeeded:
        """Tiny refused even a renewed token: mark the company as needing a person."""
        ...


def rate_wait(response: httpx.Response, default: float) -> float:
    """Seconds to wait after a 429/503: `Retry-After` (seconds or a date), else
    `X-RateLimit-Reset` (seconds until the window resets), else `default`."""
    for name in ("retry-after", "x-ratelimit-reset"):
        raw = (response.headers.get(name) or "").strip()
        if not raw:
            continue
        try:
            seconds = float(raw)
        except ValueError:
            try:
                moment = parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            seconds = (moment - datetime.now(UTC)).total_seconds()
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return default


def announced_limit(response: httpx.Response) -> int | None:
    """`X-RateLimit-Limit` as calls a minute, None when absent or not a positive number."""
    raw = (response.headers.get("x-ratelimit-limit") or "").strip()
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def _message(response: httpx.Response) -> str:
    """v3's error sentence (`mensagem`, then its `detalhes`), or the HTTP status."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    parts = [str(body.get("mensagem") or f"HTTP {response.status_code}")]
    for detail in body.get("detalhes") or []:
        if isinstance(detail, dict):
            parts.append(str(detail.get("mensagem") or detail))
        else:
            parts.append(str(detail))
    return "; ".join(parts)[:300]


class V3Client:
    """A Tiny API v3 client for any number of accounts (the Bearer is given per call)."""

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
        url = base_url or settings.tiny_v3_api_url
        self._http = httpx.Client(
            base_url=url.rstrip("/") + "/",
            transport=transport,
            timeout=settings.tiny_timeout_seconds,
            headers={"User-Agent": "tinysync/0.1", "Accept": "application/json"},
        )
        self._limiter: RateLimiter = limiter or NoRateLimiter()
        self._sleep = sleep
        self.stats = CallStats()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def get(
        self,
        bearer: Bearer,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        account: str,
        on_retry: RetryHook | None = None,
        missing_ok: bool = False,
    ) -> tuple[Any, datetime | None]:
        """GET `path` (relative to the v3 base); the JSON body and Tiny's clock at the answer.

        Retries transient failures with back-off; `missing_ok` turns a 404 into (None, date).
        """
        attempts = self.settings.tiny_max_retries + 1

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, TinyError):
                self.stats.retries[type(exc).__name__] += 1
                if on_retry is not None:
                    on_retry(path, state.attempt_number, exc, state.upcoming_sleep)

        retrying = Retrying(
            retry=retry_if_exception_type(TinyTransientError),
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        result: tuple[Any, datetime | None] = retrying(
            self._authorised, bearer, path, clean, account, missing_ok
        )
        return result

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TinyRateLimitError):
            return exc.wait_seconds
        backoff = self.settings.tiny_retry_base_seconds * (2 ** (state.attempt_number - 1))
        return backoff * (1 + random.random() * 0.25)

    def _authorised(
        self, bearer: Bearer, path: str, params: dict[str, Any], account: str, missing_ok: bool
    ) -> tuple[Any, datetime | None]:
        token = bearer.token()
        response = self._send(token, path, params, account)
        if response.status_code == 401:
            token = bearer.renew(token)
            response = self._send(token, path, params, account)
            if response.status_code == 401:
                raise bearer.lost(f"Tiny recusou o acesso a {path} mesmo com um token novo (401)")
        return self._parse(path, response, missing_ok), answered_at(response)

    def _send(self, token: str, path: str, params: dict[str, Any], account: str) -> httpx.Response:
        with self._limiter.slot(account):
            self.stats.calls += 1
            try:
                response = self._http.get(
                    path.lstrip("/"), params=params, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.TimeoutException as exc:
                raise TinyTransientError(
                    f"Tiny did not answer {path} in time", service=path
                ) from exc
            except httpx.TransportError as exc:
                raise TinyTransientError(
                    f"could not reach Tiny for {path}: {type(exc).__name__}", service=path
                ) from exc
        limit = announced_limit(response)
        if limit is not None:
            self._limiter.observe_limit(account, limit)
        return response

    def _parse(self, path: str, response: httpx.Response, missing_ok: bool) -> Any:
        status = response.status_code
        if status in RATE_STATUSES:
            wait = rate_wait(response, self.settings.tiny_rate_limit_backoff_seconds)
            raise TinyRateLimitError(
                f"Tiny answered HTTP {status} for {path} (limit of calls; waiting {wait:.0f}s)",
                wait_seconds=wait,
                code=status,
                service=path,
            )
        if status >= 500:
            raise TinyTransientError(f"Tiny answered HTTP {status} for {path}", service=path)
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            raise TinyPermanentError(
                f"Tiny refused {path} (HTTP {status}): {_message(response)}",
                code=status,
                service=path,
            )
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise TinyTransientError(
                f"Tiny answered {path} with a body that is not JSON", service=path
            ) from exc

    # -- listings and records ------------------------------------------------------------
    def list_page(
        self,
        bearer: Bearer,
        path: str,
        params: dict[str, Any],
        offset: int,
        *,
        account: str,
        limit: int = PAGE_LIMIT,
        on_retry: RetryHook | None = None,
    ) -> Page:
        """One page of a v3 listing from `offset`; `Page.page` counts pages of `limit` from 1."""
        body, served_at = self.get(
            bearer,
            path,
            {**params, "limit": limit, "offset": offset},
            account=account,
            on_retry=on_retry,
        )
        if not isinstance(body, dict):
            raise TinyTransientError(f"Tiny answered {path} without a listing", service=path)
        items = body.get("itens") or []
        records = [item for item in items if isinstance(item, dict)]
        paging = body.get("paginacao")
        paging = paging if isinstance(paging, dict) else {}
        total = _count(paging.get("total"))
        number = offset // limit + 1
        if total is None:  # no total: a short page is the last
            total_pages = number if len(records) < limit else number + 1
        else:
            total_pages = max(1, math.ceil(total / limit)) if total else 0
        return Page(records=records, page=number, total_pages=total_pages, served_at=served_at)

    def get_record(
        self,
        bearer: Bearer,
        path: str,
        *,
        account: str,
        on_retry: RetryHook | None = None,
    ) -> dict[str, Any] | None:
        """One record; None when Tiny has no such record (404)."""
        body, _ = self.get(bearer, path, account=account, on_retry=on_retry, missing_ok=True)
        return body if isinstance(body, dict) else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, ArithmeticError):
        return None
