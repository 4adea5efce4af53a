"""The soak's clients: one driver per company, the status pollers, the bad-input battery and
the unauthenticated requests. Every answer goes through a `Tally`, which counts 5xx answers
and looks for the Tiny tokens in every body.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

SYNC = "/api/admin/sync/v2"
#: gunicorn closes a keep-alive connection idle for 2 s; a client that reuses one at that
#: moment gets a reset. Browsers retry then; these clients drop idle connections sooner.
KEEPALIVE_EXPIRY_SECONDS = 1.0
#: Answers kept per kind of failure, so the report can show what went wrong.
SAMPLES = 20
#: A GET whose connection the server closed before any answer is sent once more, as a browser
#: does (RFC 9112, 9.3.1.1): it is the kept-alive connection the server timed out just as the
#: request went out, when a loaded machine stalls a client or the server past the margin
#: above. Each retry is counted and shown; a second failure counts as no answer, and a
#: gunicorn worker that died (the other way a connection drops) fails the soak by itself.
CLOSED_BEFORE_ANSWER = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


# -- what the clients saw -----------------------------------------------------------------
@dataclass
class Tally:
    """Every answer the soak's clients got from the API, by kind of request."""

    secrets: list[str]
    requests: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    server_error_count: int = 0
    transport_errors: Counter[str] = field(default_factory=Counter)
    transport_samples: list[str] = field(default_factory=list)
    retried: int = 0
    retried_samples: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    bodies_scanned: int = 0
    bad_input: int = 0
    bad_input_not_refused: list[str] = field(default_factory=list)
    unauthenticated: int = 0
    unauthenticated_got_data: list[str] = field(default_factory=list)
    cancels: Counter[str] = field(default_factory=Counter)
    #: 503s with Retry-After, as (sent, answered, description), until `settle` judges them.
    unavailable: list[tuple[float, float, str]] = field(default_factory=list)
    outage_answers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._needles = [s.encode() for s in self.secrets]

    def record(self, kind: str, response: httpx.Response, sent: float | None = None) -> None:
        """Count an answer; remember a 5xx and any body that carries a secret.

        A 503 with Retry-After to a request sent at `sent` (time.monotonic, shared by every
        process of the machine) waits for `settle`: it is the API's honest answer if the
        request was in flight while the database was down, a 5xx like any other if not.
        """
        body = response.content
        leaked = any(needle in body for needle in self._needles)
        answered = time.monotonic()
        with self.lock:
            self.requests[kind] += 1
            self.bodies_scanned += 1
            if response.status_code == 503 and "Retry-After" in response.headers and sent:
                self.unavailable.append((sent, answered, _describe(kind, response)))
            elif response.status_code >= 500:
                self.server_error_count += 1
                if len(self.server_errors) < SAMPLES:
                    self.server_errors.append(_describe(kind, response))
            if leaked:  # said without repeating the token in the soak's own output
                where = _describe(kind, response)
                for secret in self.secrets:
                    where = where.replace(secret, "<Tiny token>")
                self.leaks.append(where)

    def settle(self, outages: list[tuple[float, float]]) -> None:
        """Judge the 503s with Retry-After against the declared database outages.

        One whose request overlapped an outage (sent before it ended, answered after it
        began) is expected; any other counts as a 5xx.
        """
        with self.lock:
            for sent, answered, described in self.unavailable:
                if any(sent <= end and answered >= begin for begin, end in outages):
                    self.outage_answers += 1
                    continue
                self.server_error_count += 1
                if len(self.server_errors) < SAMPLES:
                    self.server_errors.append(f"{described} (outside any database outage)")
            self.unavailable = []

    def transport(self, kind: str, request: str, exc: Exception) -> None:
        """Count a request the API did not answer at all."""
        with self.lock:
            self.requests[kind] += 1
            self.transport_errors[kind] += 1
            if len(self.transport_samples) < SAMPLES:
                self.transport_samples.append(_failure(kind, request, exc))

    def retry(self, kind: str, request: str, exc: Exception) -> None:
        """Count a GET sent again after its connection closed before any answer."""
        with self.lock:
            self.retried += 1
            if len(self.retried_samples) < SAMPLES:
                self.retried_samples.append(_failure(kind, request, exc))

    def merge(self, other: dict[str, Any]) -> None:
        """Fold in the figures a poller process sent back."""
        with self.lock:
            self.requests.update(other["requests"])
            self.server_error_count += other["server_error_count"]
            self.server_errors.extend(other["server_errors"][:SAMPLES])
            self.transport_errors.update(other["transport_errors"])
            self.transport_samples.extend(other["transport_samples"][:SAMPLES])
            self.retried += other["retried"]
            self.retried_samples.extend(other["retried_samples"][:SAMPLES])
            self.leaks.extend(other["leaks"])
            self.bodies_scanned += other["bodies_scanned"]
            self.unavailable.extend(tuple(u) for u in other["unavailable"])


def _failure(kind: str, request: str, exc: Exception) -> str:
    return f"{time.strftime('%H:%M:%S')} {kind} {request}: {type(exc).__name__}: {exc}"


def _describe(kind: str, response: httpx.Response) -> str:
    request = response.request
    snippet = response.content[:200].decode(errors="replace").replace("\n", " ")
    path = request.url.raw_path.decode()
    return f"{kind} {request.method} {path} -> {response.status_code} {snippet}"


def api_client(base: str, headers: dict[str, str] | None = None) -> httpx.Client:
    """An HTTP client of the API that never reuses a connection the server may be closing."""
    return httpx.Client(
        base_url=base,
        headers=headers or {},
        timeout=60,
        limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS),
    )


def call(
    client: httpx.Client, tally: Tally, kind: str, method: str, path: str, **kwargs: Any
) -> httpx.Response | None:
    """One request through the tally; None when the API did not answer."""
    sent = time.monotonic()
    try:
        try:
            response = client.request(method, path, **kwargs)
        except CLOSED_BEFORE_ANSWER as exc:
            if method != "GET":
                raise
            tally.retry(kind, f"{method} {path}", exc)
            sent = time.monotonic()
            response = client.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        tally.transport(kind, f"{method} {path}", exc)
        return None
    tally.record(kind, response, sent)
    return response


def _json(response: httpx.Response | None) -> dict[str, Any]:
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- the companies' drivers ---------------------------------------------------------------
def windows(today: date) -> list[dict[str, str]]:
    """What a driver asks for in turn: the last two full months and an incremental run."""
    first = today.replace(day=1)
    last_month = first - timedelta(days=1)
    before = last_month.replace(day=1) - timedelta(days=1)
    return [
        {"mode": "period", "month": f"{last_month:%Y-%m}"},
        {"mode": "incremental"},
        {"mode": "period", "month": f"{before:%Y-%m}"},
    ]


class Driver(threading.Thread):
    """A user of one company: create, start, watch until the end (sometimes cancel), again.

    A 409 on create means beat or the cron route started a run first: the driver watches
    that one instead, as the UI does.
    """

    def __init__(
        self,
        company_id: str,
        base: str,
        admin_token: str,
        tally: Tally,
        stop: threading.Event,
        seed: int,
        cancel_share: float,
    ):
        super().__init__(name=f"driver-{company_id[:8]}", daemon=True)
        self.company_id = company_id
        self.base = base
        self.auth = {"Authorization": f"Bearer {admin_token}"}
        self.tally = tally
        self.stop = stop
        self.rng = random.Random(seed)
        self.cancel_share = cancel_share
        self.created: list[str] = []
        self.adopted: list[str] = []

    def run(self) -> None:
        asks = windows(date.today())
        turn = self.rng.randrange(len(asks))
        with api_client(self.base, self.auth) as client:
            while not self.stop.is_set():
                ask = asks[turn % len(asks)]
                turn += 1
                run_id = self._create(client, ask)
                if run_id is None:
                    self.stop.wait(1.0)
                    continue
                cancel_after = None
                if self.rng.random() < self.cancel_share:
                    cancel_after = time.monotonic() + self.rng.uniform(0.5, 12.0)
                self._watch(client, run_id, cancel_after)
                self.stop.wait(self.rng.uniform(0.0, 1.5))

    def _create(self, client: httpx.Client, ask: dict[str, str]) -> str | None:
        body = {"companyId": self.company_id, **ask}
        response = call(client, self.tally, "create", "POST", f"{SYNC}/create", json=body)
        answer = _json(response)
        if response is not None and response.status_code == 409 and answer.get("runId"):
            self.adopted.append(answer["runId"])
            return str(answer["runId"])
        if response is None or response.status_code != 200:
            return None
        run_id = str(answer["runId"])
        self.created.append(run_id)
        for attempt in range(5):
            started = call(
                client, self.tally, "start", "POST", f"{SYNC}/start", json={"runId": run_id}
            )
            if started is not None and started.status_code < 500:
                return run_id
            retry_after = started.headers.get("Retry-After") if started is not None else None
            if started is not None and started.status_code == 503 and retry_after is None:
                return run_id  # the API canceled it: the queue was unreachable
            # The database is restarting (503 with Retry-After) or no answer: start again.
            self.stop.wait(float(retry_after) if retry_after else 0.5 * (attempt + 1))
        # Never leave a QUEUED run behind: it would block the company's next runs.
        call(client, self.tally, "cancel", "POST", f"{SYNC}/cancel", json={"runId": run_id})
        return run_id

    def _watch(self, client: httpx.Client, run_id: str, cancel_after: float | None) -> None:
        etag = None
        while not self.stop.is_set():
            if cancel_after is not None and time.monotonic() >= cancel_after:
                cancel_after = None
                # A step sent at the same moment, as a second tab or the UI's stepper would:
                # whichever lands first, both answer normally (200, or 409), never a 5xx.
                racer = threading.Thread(target=self._step, args=(run_id,), daemon=True)
                racer.start()
                answer = call(
                    client, self.tally, "cancel", "POST", f"{SYNC}/cancel", json={"runId": run_id}
                )
                racer.join(timeout=90)
                if answer is not None:
                    with self.tally.lock:
                        self.tally.cancels["asked"] += 1
                        self.tally.cancels[str(answer.status_code)] += 1
            headers = {"If-None-Match": etag} if etag else {}
            response = call(
                client,
                self.tally,
                "status (driver)",
                "GET",
                f"{SYNC}/status",
                params={"runId": run_id},
                headers=headers,
            )
            if response is not None and response.status_code == 200:
                etag = response.headers.get("ETag")
                if not _json(response).get("hasMore", True):
                    return
            self.stop.wait(1.0)

    def _step(self, run_id: str) -> None:
        with api_client(self.base, self.auth) as client:
            answer = call(
                client, self.tally, "step", "POST", f"{SYNC}/step", json={"runId": run_id}
            )
        if answer is not None and answer.status_code < 500:
            with self.tally.lock:
                self.tally.cancels["raced by a step"] += 1


# -- the status pollers (in processes of their own) ----------------------------------------
def poller_process(
    base: str,
    admin_token: str,
    secrets: list[str],
    pollers: int,
    stop: Any,
    results: Any,
    seed: int,
) -> None:
    """`pollers` threads, each a browser watching a run's progress, until `stop` is set."""
    tally = Tally(secrets)
    auth = {"Authorization": f"Bearer {admin_token}"}
    latencies: list[list[float]] = [[] for _ in range(pollers)]
    codes: Counter[int] = Counter()
    codes_lock = threading.Lock()
    running: list[str] = []
    recent: list[str] = []

    def refresh() -> None:
        with api_client(base, auth) as client:
            while not stop.is_set():
                for target, params in (
                    (running, {"status": "RUNNING", "limit": "100"}),
                    (recent, {"limit": "40"}),
                ):
                    answer = _json(
                        call(client, tally, "runs", "GET", f"{SYNC}/runs", params=params)
                    )
                    ids = [r["runId"] for r in answer.get("runs", [])]
                    if ids:
                        target[:] = ids
                stop.wait(2.0)

    def poller(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        etags: dict[str, str] = {}
        run_id = None
        with api_client(base, auth) as client:
            stop.wait(rng.uniform(0, 1.0))  # not all at once
            while not stop.is_set():
                if run_id is None:
                    choices = running or recent
                    if not choices:
                        stop.wait(0.5)
                        continue
                    run_id = rng.choice(choices)
                headers = {"If-None-Match": etags[run_id]} if run_id in etags else {}
                began = time.perf_counter()
                response = call(
                    client,
                    tally,
                    "status",
                    "GET",
                    f"{SYNC}/status",
                    params={"runId": run_id},
                    headers=headers,
                )
                elapsed = (time.perf_counter() - began) * 1000
                if response is not None:
                    latencies[index].append(elapsed)
                    with codes_lock:
                        codes[response.status_code] += 1
                    if response.status_code == 200:
                        etags[run_id] = response.headers.get("ETag", "")
                        if not _json(response).get("hasMore", True):
                            run_id = None  # the modal closes; watch another run
                    elif response.status_code != 304:
                        run_id = None
                stop.wait(rng.uniform(0.5, 1.5))

    threads = [threading.Thread(target=refresh, daemon=True)]
    threads += [threading.Thread(target=poller, args=(i,), daemon=True) for i in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(
        {
            "requests": dict(tally.requests),
            "server_error_count": tally.server_error_count,
            "server_errors": tally.server_errors,
            "transport_errors": dict(tally.transport_errors),
            "transport_samples": tally.transport_samples,
            "retried": tally.retried,
            "retried_samples": tally.retried_samples,
            "unavailable": tally.unavailable,
            "leaks": tally.leaks,
            "bodies_scanned": tally.bodies_scanned,
            "latencies": [ms for per in latencies for ms in per],
            "codes": dict(codes),
        }
    )


# -- bad input and strangers ----------------------------------------------------------------
@dataclass
class Probe:
    """One request of a battery: what to send and how to judge the answer."""

    name: str
    method: str
    path: str
    kwargs: dict[str, Any]


def bad_input(company_id: str, run_id: str) -> list[Probe]:
    """Requests a careless or hostile client sends: each must get a 4xx, never a 500 or a run."""
    today = date.today()
    future = f"{today.year + today.month // 12}-{today.month % 12 + 1:02d}"
    unknown = str(uuid.uuid4())
    probes: list[Probe] = []

    def create(name: str, body: Any) -> None:
        probes.append(Probe(f"create: {name}", "POST", f"{SYNC}/create", {"json": body}))

    create("no companyId", {"mode": "incremental"})
    create("companyId a number", {"companyId": 123, "mode": "incremental"})
    create("companyId not an id", {"companyId": "not-an-id", "mode": "incremental"})
    create("unknown company", {"companyId": unknown, "mode": "incremental"})
    create("unknown mode", {"companyId": company_id, "mode": "fast"})
    create("month 13", {"companyId": company_id, "mode": "period", "month": "2024-13"})
    create("future month", {"companyId": company_id, "mode": "period", "month": future})
    create("short month", {"companyId": company_id, "mode": "period", "month": "2024-1"})
    create("month a number", {"companyId": company_id, "mode": "period", "month": 202412})
    create("NUL in month", {"companyId": company_id, "mode": "period", "month": "2024-\x0001"})
    create("period without dates", {"companyId": company_id, "mode": "period"})
    create(
        "period over 12 months",
        {
            "companyId": company_id,
            "mode": "period",
            "startDate": "2023-01-01",
            "endDate": "2024-06-01",
        },
    )
    create(
        "31 February",
        {
            "companyId": company_id,
            "mode": "period",
            "startDate": "2024-02-30",
            "endDate": "2024-03-01",
        },
    )
    create(
        "incremental with month",
        {"companyId": company_id, "mode": "incremental", "month": "2024-01"},
    )
    create("unknown field", {"companyId": company_id, "mode": "incremental", "monht": "x"})
    create("a list", [company_id, "incremental"])
    create("null", None)
    probes += [
        Probe(
            "create: not JSON",
            "POST",
            f"{SYNC}/create",
            {"content": b"companyId=x", "headers": {"Content-Type": "text/plain"}},
        ),
        Probe(
            "create: broken JSON",
            "POST",
            f"{SYNC}/create",
            {"content": b'{"companyId": ', "headers": {"Content-Type": "application/json"}},
        ),
        Probe(
            "create: 100 kB body",
            "POST",
            f"{SYNC}/create",
            {"json": {"companyId": company_id, "mode": "x" * 100_000}},
        ),
        Probe("create: GET", "GET", f"{SYNC}/create", {}),
    ]
    for route in ("start", "cancel", "step", "resume"):
        for name, body in (
            ("unknown run", {"runId": unknown}),
            ("runId not an id", {"runId": "abc"}),
            ("runId a number", {"runId": 7}),
            ("no runId", {}),
            ("NUL in runId", {"runId": "a\x00"}),
        ):
            probes.append(Probe(f"{route}: {name}", "POST", f"{SYNC}/{route}", {"json": body}))
    probes += [
        Probe("status: no runId", "GET", f"{SYNC}/status", {}),
        Probe("status: runId not an id", "GET", f"{SYNC}/status", {"params": {"runId": "zz"}}),
        Probe("status: NUL", "GET", f"{SYNC}/status?runId=a%00b", {}),
        Probe("status: unknown run", "GET", f"{SYNC}/status", {"params": {"runId": unknown}}),
        Probe(
            "status: SQL in runId", "GET", f"{SYNC}/status", {"params": {"runId": "' OR 1=1 --"}}
        ),
        Probe("runs: unknown status", "GET", f"{SYNC}/runs", {"params": {"status": "BOGUS"}}),
        Probe("runs: limit not a number", "GET", f"{SYNC}/runs", {"params": {"limit": "ten"}}),
        Probe("runs: bad cursor", "GET", f"{SYNC}/runs", {"params": {"before": "nope"}}),
        Probe("logs: runId not an id", "GET", f"{SYNC}/runs/x/logs", {}),
        Probe("logs: unknown run", "GET", f"{SYNC}/runs/{unknown}/logs", {}),
        Probe(
            "logs: bad cursor", "GET", f"{SYNC}/runs/{run_id}/logs", {"params": {"before": "nope"}}
        ),
        Probe(
            "companies: empty name",
            "POST",
            "/api/admin/companies",
            {"json": {"name": "", "token": "x"}},
        ),
        Probe(
            "companies: token with spaces",
            "POST",
            "/api/admin/companies",
            {"json": {"name": "Bad Ltda", "token": "a b c"}},
        ),
        Probe("companies: unknown id", "POST", f"/api/admin/companies/{unknown}/deactivate", {}),
        Probe("unknown route", "GET", "/api/admin/nothing-here", {}),
        Probe("wrong method", "DELETE", f"{SYNC}/status", {}),
    ]
    return probes


def strangers(admin_token: str, cron_secret: str, company_id: str, run_id: str) -> list[Probe]:
    """Requests without the admin token (or with a wrong one): each must get no data."""
    wrong = [
        ("no Authorization", {}),
        ("a wrong token", {"Authorization": "Bearer not-the-admin-token"}),
        ("the token minus its last character", {"Authorization": f"Bearer {admin_token[:-1]}"}),
        ("the token plus a character", {"Authorization": f"Bearer {admin_token}x"}),
        ("an empty bearer", {"Authorization": "Bearer"}),
        ("Basic auth", {"Authorization": "Basic YWRtaW46YWRtaW4="}),
        ("the cron secret", {"Authorization": f"Bearer {cron_secret}"}),
        ("the token in another header", {"X-Api-Key": admin_token}),
        ("a forged session cookie", {"Cookie": "session=eyJhZG1pbiI6dHJ1ZX0.Zm9yZ2Vk.c2ln"}),
    ]
    targets = [
        ("GET", f"{SYNC}/status", {"params": {"runId": run_id}}),
        ("GET", f"{SYNC}/runs", {}),
        ("GET", f"{SYNC}/runs/{run_id}/logs", {}),
        ("GET", "/api/admin/companies", {}),
        ("GET", "/api/admin/reports/summary", {"params": {"companyId": company_id}}),
        ("POST", f"{SYNC}/create", {"json": {"companyId": company_id, "mode": "incremental"}}),
        ("POST", f"{SYNC}/cancel", {"json": {"runId": run_id}}),
        ("POST", f"{SYNC}/start", {"json": {"runId": run_id}}),
        ("POST", f"/api/admin/companies/{company_id}/deactivate", {}),
        ("GET", f"{SYNC}/status?runId={run_id}&token={admin_token}", {}),
    ]
    probes = [
        Probe(
            f"{method} {path.split('?')[0]} with {label}",
            method,
            path,
            {**kwargs, "headers": headers},
        )
        for label, headers in wrong
        for method, path, kwargs in targets
    ]
    probes += [
        Probe("cron with no secret", "POST", "/api/cron/sync", {}),
        Probe(
            "cron with the admin token",
            "POST",
            "/api/cron/sync",
            {"headers": {"Authorization": f"Bearer {admin_token}"}},
        ),
        Probe("UI reports without signing in", "GET", "/relatorios", {}),
        Probe("UI history without signing in", "GET", "/historico", {}),
        Probe("UI run page without signing in", "GET", f"/historico/{run_id}", {}),
    ]
    return probes


class Battery(threading.Thread):
    """Bad input and strangers, in a bounded loop, one request at a time, until stopped."""

    def __init__(
        self,
        base: str,
        admin_token: str,
        cron_secret: str,
        tally: Tally,
        stop: threading.Event,
        known: Callable[[], tuple[str, str, set[str]]],
        seed: int,
        pause_seconds: float = 0.25,
    ):
        super().__init__(name="battery", daemon=True)
        self.base, self.admin_token, self.cron_secret = base, admin_token, cron_secret
        self.tally, self.stop, self.known = tally, stop, known
        self.rng = random.Random(seed)
        self.pause_seconds = pause_seconds

    def run(self) -> None:
        auth = {"Authorization": f"Bearer {self.admin_token}"}
        with api_client(self.base) as client:
            while not self.stop.is_set():
                company_id, run_id, secrets = self.known()
                bad = bad_input(company_id, run_id)
                strange = strangers(self.admin_token, self.cron_secret, company_id, run_id)
                mixed = [(p, True) for p in bad] + [(p, False) for p in strange]
                self.rng.shuffle(mixed)
                for probe, authorized in mixed:
                    if self.stop.is_set():
                        return
                    self._send(client, auth, probe, authorized, secrets)
                    self.stop.wait(self.pause_seconds)

    def _send(
        self,
        client: httpx.Client,
        auth: dict[str, str],
        probe: Probe,
        authorized: bool,
        secrets: set[str],
    ) -> None:
        kwargs = dict(probe.kwargs)
        if authorized:
            kwargs["headers"] = {**auth, **kwargs.get("headers", {})}
        else:  # a guesser of its own address: its throttling must not stop the drivers
            guesser = {"X-Forwarded-For": f"203.0.113.{self.rng.randrange(1, 255)}"}
            kwargs["headers"] = {**guesser, **kwargs.get("headers", {})}
        kind = "bad input" if authorized else "unauthenticated"
        response = call(client, self.tally, kind, probe.method, probe.path, **kwargs)
        if response is None:
            return
        # An id the request itself carries may be echoed (a sign-in redirect keeps the page
        # asked for); any other id in the answer would be data.
        sent = str(response.request.url) + response.request.content.decode(errors="replace")
        self._judge(probe, authorized, response, {s for s in secrets if s not in sent})

    def _judge(
        self, probe: Probe, authorized: bool, response: httpx.Response, secrets: set[str]
    ) -> None:
        status = response.status_code
        with self.tally.lock:
            if authorized:
                self.tally.bad_input += 1
                if not 400 <= status < 500:
                    self.tally.bad_input_not_refused.append(
                        f"{probe.name}: {status} {response.text[:160]}"
                    )
                return
            self.tally.unauthenticated += 1
            redirect_to_sign_in = status in (302, 303) and "/entrar" in response.headers.get(
                "Location", ""
            )
            body = response.text
            shown = [s for s in secrets if s in body]
            if (status < 400 and not redirect_to_sign_in) or shown:
                self.tally.unauthenticated_got_data.append(f"{probe.name}: {status} {body[:160]}")


def cron_tick(base: str, cron_secret: str, tally: Tally) -> dict[str, Any]:
    """POST /api/cron/sync as a scheduler would: incremental runs for idle companies."""
    with api_client(base) as client:
        answer = call(
            client,
            tally,
            "cron",
            "POST",
            "/api/cron/sync",
            headers={"Authorization": f"Bearer {cron_secret}"},
        )
    return _json(answer)


def dumps(value: Any) -> str:
    """JSON for the report files."""
    return json.dumps(value, indent=2, default=str)
