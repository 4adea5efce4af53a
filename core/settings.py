"""Settings: every default in one place, read from the environment (and `.env`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///tinysync.db"
DEFAULT_TINY_API_URL = "https://api.tiny.com.br/api2"
DEFAULT_TINY_V3_API_URL = "https://api.tiny.com.br/public-api/v3"
TINY_V3_ACCOUNTS = "https://accounts.tiny.com.br/realms/tiny/protocol/openid-connect"
#: Used only when SECRET_KEY is unset, so the embedded demo works out of the box.
DEV_SECRET_KEY = "tinysync-dev-secret-change-me"


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """tinysync's configuration; field names map to environment variables in upper case."""

    database_url: str = DEFAULT_DATABASE_URL
    celery_broker_url: str | None = None
    redis_url: str | None = None
    tiny_api_url: str = DEFAULT_TINY_API_URL
    tiny_min_interval_ms: int = 1100
    tiny_concurrency: int = 1
    #: How far under the limit Tiny announces (`x-limit-api`) an account is paced: 0..0.5.
    tiny_limit_margin: float = 0.05
    tiny_max_retries: int = 2
    tiny_max_enrich_per_run: int = 50
    tiny_timeout_seconds: float = 30.0
    tiny_retry_base_seconds: float = 1.0
    tiny_rate_limit_backoff_seconds: float = 60.0
    cron_secret: str | None = None
    sync_admin_token: str | None = None
    secret_key: str = DEV_SECRET_KEY
    sync_incremental_days: int = 30
    sync_step_budget_seconds: float = 20.0
    sync_lease_seconds: float = 60.0
    sync_reaper_interval_seconds: float = 30.0
    #: Take-overs of one run's stalled executor before the reaper gives the run up (FAILED).
    sync_max_resumes: int = 10
    sync_beat_interval_minutes: float = 30.0
    sync_module_soft_time_limit_seconds: int = 1800
    sync_module_time_limit_seconds: int = 1900
    #: Threads of `tinysync worker` (one module task each; a thread waiting on Tiny is cheap).
    worker_concurrency: int = 200
    #: The longest a module task works before it hands its thread back and queues again.
    sync_task_slice_seconds: float = 30.0
    max_request_bytes: int = 64 * 1024
    #: Passes over a multi-page listing before it is accepted as unconfirmed (see paging.paged).
    sync_listing_max_passes: int = 4
    #: How old a product's balance may get (the stock module's rolling re-check keeps to it).
    sync_stock_max_age_hours: float = 24.0
    #: Older SECRET_KEYs, comma-separated: stored tokens encrypted under them still decrypt.
    secret_key_fallbacks: str | None = None
    #: Session cookies only over HTTPS (set it when the site is served over HTTPS).
    session_cookie_secure: bool = False
    #: How many proxies in front of the app set X-Forwarded-* (Werkzeug's ProxyFix); 0: none.
    trusted_proxies: int = 0
    session_idle_minutes: float = 120.0
    session_max_hours: float = 12.0
    #: Failed sign-ins and failed bearer tokens allowed per client (Flask-Limiter notation).
    auth_failure_limit: str = "10 per minute"
    #: Bearer token of the business figures of /metrics (unset: process metrics only).
    metrics_token: str | None = None
    #: What names an account in the per-account metrics: `id` (8 hex of its key) or `name`.
    metrics_account_label: str = "id"
    sync_queued_timeout_seconds: float = 900.0
    sync_abandoned_after_seconds: float = 3600.0
    sync_log_retention_days: int = 90
    sync_run_retention_days: int = 365
    notify_webhook_url: str | None = None
    notify_webhook_secret: str | None = None
    #: `failed` (runs that end FAILED) or `all` (every finished run).
    notify_on: str = "failed"
    notify_max_attempts: int = 5
    notify_retry_base_seconds: float = 2.0
    #: Tiny API v3 (companies with apiVersion v3): the resources and the OAuth endpoints.
    tiny_v3_api_url: str = DEFAULT_TINY_V3_API_URL
    tiny_v3_auth_url: str = TINY_V3_ACCOUNTS + "/auth"
    tiny_v3_token_url: str = TINY_V3_ACCOUNTS + "/token"
    #: The callback registered in the Tiny app; unset: this site's /oauth/tiny/callback.
    tiny_v3_redirect_uri: str | None = None
    #: An access token with less than this left is refreshed before the call.
    tiny_v3_refresh_ahead_seconds: float = 600.0
    #: How often beat looks for v3 companies to refresh (idle ones, before their refresh
    #: token lapses: at half its lifetime).
    tiny_v3_refresh_check_minutes: float = 30.0

    #: Old names of the seed's environment kept working (the seed says TINY_MIN_INTERVAL).
    _ALIASES = {
        "tiny_min_interval_ms": ("TINY_MIN_INTERVAL_MS", "TINY_MIN_INTERVAL"),
        "sync_step_budget_seconds": ("SYNC_STEP_BUDGET_SECONDS", "STEP_BUDGET_SECONDS"),
        "sync_lease_seconds": ("SYNC_LEASE_SECONDS", "LEASE_SECONDS"),
    }

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: bool = True, **overrides: Any
    ) -> Settings:
        """Build settings from the environment (plus `.env` when present), then overrides."""
        if environ is None:
            if dotenv:
                from dotenv import dotenv_values

                file_values = {k: v for k, v in dotenv_values(".env").items() if v is not None}
                environ = {**file_values, **os.environ}
            else:
                environ = dict(os.environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name.startswith("_"):
                continue
            names = cls._ALIASES.get(f.name, (f.name.upper(),))
            for name in names:
                raw = environ.get(name)
                if raw is not None and raw != "":
                    values[f.name] = _coerce(f.name, name, raw, f.type)
                    break
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if not 0 <= self.tiny_limit_margin <= 0.5:
            raise SettingsError(
                f"TINY_LIMIT_MARGIN={self.tiny_limit_margin} is not between 0 and 0.5 "
                "(0.05 paces each account 5% under the limit Tiny announces)"
            )
        if self.metrics_account_label not in ("id", "name"):
            raise SettingsError(
                f"METRICS_ACCOUNT_LABEL={self.metrics_account_label!r} is not 'id' or 'name'"
            )

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def executor(self) -> str:
        """`celery` when a broker is configured, else `inline`."""
        return "celery" if self.celery_broker_url else "inline"

    @property
    def shared_redis_url(self) -> str | None:
        """The Redis that holds the cross-process rate limit, if any."""
        if self.redis_url:
            return self.redis_url
        if self.celery_broker_url and self.celery_broker_url.startswith(("redis://", "rediss://")):
            return self.celery_broker_url
        return None

    @property
    def uses_sandbox(self) -> bool:
        """True when Tiny is the built-in in-process fake."""
        return self.tiny_api_url.strip().lower() == "sandbox"

    @property
    def embedded(self) -> bool:
        """The embedded default: a SQLite file *and* the in-process sandbox (the demo's),
        where no real Tiny token can be stored, so the secrets may be left unset. Anything
        else (PostgreSQL, or SQLite talking to a real Tiny) must set them (`require_secrets`)."""
        return self.database_url.startswith("sqlite") and self.uses_sandbox

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """SECRET_KEY first (it encrypts), then the fallbacks (they only decrypt)."""
        older = [k.strip() for k in (self.secret_key_fallbacks or "").split(",") if k.strip()]
        return (self.secret_key, *older)


#: The shortest SECRET_KEY accepted outside the embedded demo.
MIN_SECRET_KEY_LENGTH = 32
MAKE_A_SECRET = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'


def _placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return "change-me" in lowered or "changeme" in lowered or lowered in {"secret", "password"}


def _weak_key(key: str) -> bool:
    return key == DEV_SECRET_KEY or _placeholder(key) or len(key) < MIN_SECRET_KEY_LENGTH


def token_key_problem(settings: Settings) -> str | None:
    """Why a Tiny token must not be stored under these settings, if so: a real Tiny's token
    (anything but the in-process sandbox) under a weak SECRET_KEY, whatever the database."""
    if settings.uses_sandbox or not _weak_key(settings.secret_key):
        return None
    return (
        f"SECRET_KEY is unset, a placeholder or shorter than {MIN_SECRET_KEY_LENGTH} "
        f"characters: set it before storing a Tiny token; make one with: {MAKE_A_SECRET}"
    )


def secret_problems(settings: Settings, *, strict: bool | None = None) -> list[str]:
    """What is wrong with the secrets; by default checked only outside the embedded setup."""
    if strict is None:
        strict = not settings.embedded
    if not strict:
        return []
    problems = []
    if _weak_key(settings.secret_key):
        demo = " (or TINY_API_URL=sandbox for the built-in fake Tiny, as the demo)"
        problems.append(
            f"SECRET_KEY is unset, a placeholder or shorter than {MIN_SECRET_KEY_LENGTH} "
            f"characters; make one with: {MAKE_A_SECRET}"
            + (demo if settings.database_url.startswith("sqlite") else "")
        )
    for name in ("sync_admin_token", "cron_secret", "metrics_token", "notify_webhook_secret"):
        value = getattr(settings, name)
        if value and _placeholder(value):
            problems.append(
                f"{name.upper()} is the placeholder of .env.example; make one with: "
                f"{MAKE_A_SECRET} (or leave it unset to turn the route off)"
            )
    return problems


def require_secrets(settings: Settings) -> Settings:
    """Raise SettingsError naming the first bad secret, unless this is the embedded default."""
    problems = secret_problems(settings)
    if problems:
        raise SettingsError(problems[0])
    return settings


def _coerce(field: str, env_name: str, raw: str, type_name: Any) -> Any:
    text = str(type_name)
    if text.startswith("bool"):
        if raw.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.strip().lower() in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{env_name}={raw!r} is not true or false")
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{env_name}={raw!r} is not a number") from exc
    return raw
