"""The API's bodies, queries and answers as pydantic models: they validate input and are the
source of `/openapi.json`.

Ids are checked by `core` (one message for every driver), so they are plain text here with
`format: uuid` for the document. Request bodies refuse unknown fields, so a typo is an error
rather than a silently ignored option; queries ignore unknown parameters, as browsers and
proxies add their own (cache busters).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from core.modules import MODULE_KEYS
from core.runs import ModuleStatus, RunStatus


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refusing it here keeps it a 400, not a 500.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
Id = Annotated[str, AfterValidator(_no_nul), Field(json_schema_extra={"format": "uuid"})]
CallsPerMinute = Annotated[
    int | None,
    Field(
        strict=True,
        ge=1,
        le=600,
        description="calls a minute to pace the company's Tiny account to, instead of the "
        "limit Tiny announces (`x-limit-api`); null follows Tiny",
    ),
]


class Body(BaseModel):
    """A JSON request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query-string parameters: unknown ones are ignored."""

    model_config = ConfigDict(extra="ignore")


class Answer(BaseModel):
    """A JSON answer; fields beyond the documented ones may be added later."""

    model_config = ConfigDict(extra="allow")


# -- requests ---------------------------------------------------------------------------
class CreateRunBody(Body):
    """What to sync: a company, a mode, and for `period` a month or a date range."""

    companyId: Id
    mode: Literal["incremental", "period"] = Field(
        description="`incremental`: the last SYNC_INCREMENTAL_DAYS days; `period`: a month "
        "or startDate..endDate (at most 12 months)"
    )
    month: Text | None = Field(None, description="YYYY-MM, not in the future", examples=["2024-12"])
    startDate: Text | None = Field(None, json_schema_extra={"format": "date"})
    endDate: Text | None = Field(None, json_schema_extra={"format": "date"})


class RunIdBody(Body):
    """The run a request is about."""

    runId: Id


class StatusQuery(Query):
    """The run whose status to show."""

    runId: Id


class RunsQuery(Query):
    """Filters and page of the run history (newest first)."""

    companyId: Id | None = None
    status: RunStatus | None = None
    before: Id | None = Field(None, description="the nextCursor of the previous page")
    limit: int = Field(20, ge=1, le=200)


class LogsQuery(Query):
    """A page of a run's log (newest first)."""

    before: Id | None = Field(None, description="the nextCursor of the previous page")
    limit: int = Field(100, ge=1, le=500)


class CompanyBody(Body):
    """A new company: v2 with its Tiny API token, or v3 with its Tiny app's client id and
    secret (then "Conectar ao Tiny" in the UI). Secrets are write-only: never returned."""

    name: Text = Field(min_length=1, max_length=200)
    apiVersion: Literal["v2", "v3"] = "v2"
    token: SecretStr | None = Field(
        None, min_length=1, max_length=500, json_schema_extra={"writeOnly": True}
    )
    clientId: Text | None = Field(None, min_length=1, max_length=200)
    clientSecret: SecretStr | None = Field(
        None, min_length=1, max_length=200, json_schema_extra={"writeOnly": True}
    )
    tinyCallsPerMinute: CallsPerMinute = None


class CompanyPaceBody(Body):
    """The pace of a company's Tiny account: a number overrides Tiny's `x-limit-api`."""

    tinyCallsPerMinute: CallsPerMinute = Field(...)


# -- answers ----------------------------------------------------------------------------
class ErrorAnswer(BaseModel):
    """Every error: a sentence for a person; a 409 also names the run it is about."""

    success: Literal[False]
    error: str
    runId: str | None = None
    status: str | None = None


class Verified(Answer):
    """What a module confirmed against Tiny (`core.runs.model.Verification`)."""

    listed: int = Field(0, description="records Tiny served")
    stored: int = Field(0, description="rows written")
    corrected: dict[str, int] = Field(
        default_factory=dict,
        description="stored rows a re-read corrected, by kind: paid, canceled, deleted, changed…",
    )
    setAside: int = Field(0, description="records not stored (an odd value)")
    setAsideNamed: list[str] = Field(
        default_factory=list, description="the first few set aside: \"pedido 123, valor 'NaN'\""
    )
    unconfirmed: list[str] = Field(
        default_factory=list,
        description="sentences (Portuguese) on what could not be confirmed, e.g. a listing "
        "that kept moving while read",
    )


class ListingPage(Answer):
    """The page of a module's listing last written, of the pages Tiny says it has."""

    page: int
    pages: int = Field(description="Tiny's numero_paginas for the listing being read")


class ModuleProgress(Answer):
    """One module's progress, as in the seed's progress JSON."""

    status: ModuleStatus
    processed: int = 0
    skipped: int = 0
    errors: list[str] = []
    verified: Verified | None = Field(
        None, description="absent until the module has verified something"
    )
    listing: ListingPage | None = Field(
        None, description="where the listing being read is, when Tiny gives its size"
    )


class Progress(Answer):
    """Progress of every module, keyed by module."""

    modules: dict[str, ModuleProgress] = Field(
        description=f"keys, in run order: {', '.join(MODULE_KEYS)}"
    )


class RunState(BaseModel):
    """A run's id and status after a transition."""

    success: Literal[True]
    runId: str
    status: RunStatus


class StepAnswer(RunState):
    """The seed's step answer; `retryAfterSeconds` when Tiny asked the run to wait."""

    currentModule: str | None
    progress: Progress
    hasMore: bool
    retryAfterSeconds: float | None = None


class RunSummary(Answer):
    """A run in listings."""

    runId: str
    id: str
    companyId: str
    mode: Literal["incremental", "period"]
    status: RunStatus
    startDate: str
    endDate: str
    currentModule: str | None
    errorMessage: str | None
    createdAt: str
    startedAt: str | None
    finishedAt: str | None
    durationSeconds: float | None
    processed: int
    skipped: int
    tinyCalls: int
    triggeredByUserId: str | None


class LogEntry(BaseModel):
    """One line of a run's log."""

    id: str
    timestamp: str
    level: str
    message: str
    module: str | None
    metadata: dict[str, Any] | None


class StatusAnswer(RunSummary):
    """Everything about a run: summary, modules, whether stepping can do more, latest logs."""

    success: Literal[True]
    progress: Progress
    hasMore: bool
    retryAfterSeconds: float | None = None
    updatedAt: str
    logs: list[LogEntry]


class RunsAnswer(BaseModel):
    """A page of the run history."""

    success: Literal[True]
    runs: list[RunSummary]
    nextCursor: str | None


class LogsAnswer(BaseModel):
    """A page of a run's log."""

    success: Literal[True]
    runId: str
    logs: list[LogEntry]
    nextCursor: str | None


class CompanyView(Answer):
    """A company (never its token, app secret or token pair)."""

    id: str
    name: str
    active: bool
    tinyCallsPerMinute: int | None = None
    createdAt: str | None
    activeRunId: str | None = None
    apiVersion: Literal["v2", "v3"] = "v2"
    clientId: str | None = Field(None, description="v3: the Tiny app's client id")
    connected: bool | None = Field(None, description="v3: whether a token pair is stored")
    needsReconnect: bool = Field(
        False, description="v3: the authorisation lapsed; a person must connect again"
    )
    needsReconnectReason: str | None = None


class CompanyAnswer(BaseModel):
    """One company."""

    success: Literal[True]
    company: CompanyView


class CompaniesAnswer(BaseModel):
    """Every company, by name."""

    success: Literal[True]
    companies: list[CompanyView]


class CreatedRun(BaseModel):
    """A run the cron route created and started."""

    companyId: str
    runId: str
    status: RunStatus


class SkippedCompany(BaseModel):
    """A company the cron route left alone because it already has an active run."""

    companyId: str
    activeRunId: str | None


class SteppedRun(BaseModel):
    """What one inline step of the cron route did."""

    runId: str
    executed: str | None
    status: RunStatus
    hasMore: bool


class CronAnswer(BaseModel):
    """What the cron route did; `steps` only with the inline executor."""

    success: Literal[True]
    executor: Literal["inline", "celery"]
    created: list[CreatedRun]
    skipped: list[SkippedCompany]
    steps: list[SteppedRun]


class HealthAnswer(BaseModel):
    """Each dependency's state: `ok`, `unavailable` or `not configured`."""

    success: bool
    status: Literal["ok", "unavailable"]
    executor: Literal["inline", "celery"]
    checks: dict[str, str]


class PingAnswer(BaseModel):
    """The cheapest JSON answer there is."""

    ok: Literal[True]
