"""The soak's hardened doors, tried in a loop under the load: a signed-out session's cookie, an
expired session, throttled guessing (bearer and sign-in form), `/metrics` without its token,
the placeholders of `.env.example` as credentials (and as the deployment's own secrets, which
the API, a worker and beat must refuse to start with); and a cancel racing a step, on a company of
its own (active only while it races, so beat and cron leave it alone).

Every answer goes through the soak's `Tally` (5xx, token leaks); a wrong credential that gets
data lands in `tally.unauthenticated_got_data`, whose count must be zero. Each case tried is
counted (`Hardening.cases`); a door that did not hold is a `failures` line. The guessers come
from addresses of their own (`X-Forwarded-For`, the soak's API trusts one proxy hop), so
throttling them never throttles the drivers.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from itsdangerous import base64_decode

from bench.soak_load import SYNC, Tally, api_client, call

#: What `.env.example` ships; a deployment refuses to start with them, so they open nothing.
PLACEHOLDERS = ("change-me", "change-me-to-a-long-random-string")
#: Business figures: every metric of tinysync's own (the process metrics are `process_*`).
BUSINESS = "tinysync_"
ADMIN_READS = (f"{SYNC}/runs", "/api/admin/companies")
SESSION_COOKIE = "session"
SIGN_IN_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
#: How many wrong credentials a guesser sends at most before it must have met a 429.
GUESSES = 40
#: The cases, in the order the report lists them.
CASES = (
    "revoked sessions",
    "expired sessions",
    "wrong bearers",
    "wrong sign-ins",
    "throttled 429s",
    "right token from another client",
    "private metrics",
    "placeholder secrets",
    "cancels raced by a step",
)


def cookie_session(cookie: str) -> dict[str, Any]:
    """What a Flask session cookie holds (signed, not encrypted: anyone can read it)."""
    compressed = cookie.startswith(".")
    payload = cookie.split(".")[1 if compressed else 0]
    try:
        raw = base64_decode(payload)
        value = json.loads(zlib.decompress(raw) if compressed else raw)
    except (ValueError, zlib.error):
        return {}
    return value if isinstance(value, dict) else {}


def session_row(cookie: str) -> str | None:
    """The server-side row id (`UiSession.id`: SHA-256 of the id) the cookie names."""
    sid = cookie_session(cookie).get("sid")
    return hashlib.sha256(sid.encode()).hexdigest() if isinstance(sid, str) else None


class Hardening(threading.Thread):
    """The doors above, one case at a time, until stopped."""

    def __init__(
        self,
        base: str,
        admin_token: str,
        metrics_token: str,
        tally: Tally,
        stop: threading.Event,
        known: Callable[[], tuple[str, str, set[str]]],
        age_session: Callable[[str, str], None],
        race_token: str,
        pause_seconds: float = 0.3,
    ):
        super().__init__(name="hardening", daemon=True)
        self.base, self.admin_token, self.metrics_token = base, admin_token, metrics_token
        self.tally, self.stop, self.known = tally, stop, known
        self.age_session = age_session  # (row id, "idle" | "absolute"): make it expired
        self.pause_seconds = pause_seconds
        self.race_token = race_token
        self.race_company: str | None = None
        self.cases: Counter[str] = Counter()
        self.failures: list[str] = []
        self.rounds_without_429: Counter[str] = Counter()
        self._address = 0

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        cases = [
            self.revoked_session,
            self.expired_session,
            self.throttled_bearer,
            self.private_metrics,
            self.placeholder_secrets,
            self.throttled_sign_in,
            self.cancel_racing_a_step,
        ]
        turn = 0
        while not self.stop.is_set():
            case = cases[turn % len(cases)]
            turn += 1
            try:
                case()
            except httpx.TransportError:
                pass  # counted by `call` already (no answer); the case is tried again later
            self.stop.wait(self.pause_seconds)

    def stranger(self) -> dict[str, str]:
        """A client address of its own (documentation ranges, RFC 5737)."""
        self._address += 1
        n = self._address
        return {"X-Forwarded-For": f"198.51.{100 + (n // 250) % 100}.{1 + n % 250}"}

    def _client(self) -> httpx.Client:
        return api_client(self.base)

    def _no_data(
        self, case: str, response: httpx.Response | None, *, metrics: bool = False
    ) -> None:
        """A wrong credential's answer: no admin data, no id of a company or a run."""
        if response is None:
            return
        _, _, secrets = self.known()
        sent = str(response.request.url) + response.request.content.decode(errors="replace")
        body = response.text
        shown = [s for s in secrets if s in body and s not in sent]
        status = response.status_code
        to_sign_in = status in (302, 303) and "/entrar" in response.headers.get("Location", "")
        if metrics:
            got_data = BUSINESS in body or bool(shown)
        else:
            got_data = (status < 400 and not to_sign_in) or bool(shown)
        with self.tally.lock:
            self.tally.unauthenticated += 1
            if got_data:
                self.tally.unauthenticated_got_data.append(f"{case}: {status} {body[:160]}")
        self.cases[case] += 1

    # -- sessions ----------------------------------------------------------------------------
    def _sign_in(self, client: httpx.Client) -> str | None:
        """Sign in through the form as a browser does; the cookie, or None (an outage)."""
        page = call(client, self.tally, "sign-in", "GET", "/entrar")
        found = SIGN_IN_CSRF.search(page.text) if page is not None else None
        if found is None:
            return None
        answer = call(
            client,
            self.tally,
            "sign-in",
            "POST",
            "/entrar",
            data={"token": self.admin_token, "csrf": found.group(1)},
        )
        if answer is None or answer.status_code != 302:
            return None
        cookie = client.cookies.get(SESSION_COOKIE)
        # The cookie must work before it is revoked, or the case would prove nothing.
        works = call(client, self.tally, "signed in", "GET", ADMIN_READS[0])
        return cookie if works is not None and works.status_code == 200 else None

    def _replay(self, case: str, cookie: str) -> None:
        """A copy of `cookie` in another browser: every read must find it dead."""
        for path in (*ADMIN_READS, "/relatorios"):
            with api_client(self.base, {"Cookie": f"{SESSION_COOKIE}={cookie}"}) as other:
                self._no_data(case, call(other, self.tally, "unauthenticated", "GET", path))

    def revoked_session(self) -> None:
        with self._client() as client:
            cookie = self._sign_in(client)
            if cookie is None:
                return
            csrf = str(cookie_session(cookie).get("csrf", ""))
            out = call(client, self.tally, "sign-out", "POST", "/sair", data={"csrf": csrf})
            if out is None or out.status_code != 302:
                return
        self._replay("revoked sessions", cookie)

    def expired_session(self) -> None:
        for how in ("idle", "absolute"):
            with self._client() as client:
                cookie = self._sign_in(client)
            row = session_row(cookie) if cookie else None
            if cookie is None or row is None:
                continue
            try:
                self.age_session(row, how)
            except Exception:  # the database restarting: try again next round
                continue
            self._replay("expired sessions", cookie)

    # -- throttling --------------------------------------------------------------------------
    def throttled_bearer(self) -> None:
        guesser = self.stranger()
        with self._client() as client:
            for i in range(GUESSES):
                headers = {**guesser, "Authorization": f"Bearer wrong-{i}-{self.admin_token[:4]}"}
                answer = call(
                    client, self.tally, "unauthenticated", "GET", ADMIN_READS[1], headers=headers
                )
                self._no_data("wrong bearers", answer)
                if answer is not None and answer.status_code == 429:
                    self._judge_429("throttled 429s", answer)
                    break
            else:
                self.rounds_without_429["bearer"] += 1
                return
            # The right token, from another client, still works.
            right = {**self.stranger(), "Authorization": f"Bearer {self.admin_token}"}
            answer = call(client, self.tally, "right token", "GET", ADMIN_READS[1], headers=right)
            if answer is not None and answer.status_code == 429:
                self.failures.append("the right token was refused for another client (429)")
            elif answer is not None and answer.status_code == 200:
                self.cases["right token from another client"] += 1

    def throttled_sign_in(self) -> None:
        guesser = self.stranger()
        with api_client(self.base, guesser) as client:
            for i in range(GUESSES):
                page = call(client, self.tally, "sign-in", "GET", "/entrar")
                found = SIGN_IN_CSRF.search(page.text) if page is not None else None
                if found is None:
                    return
                answer = call(
                    client,
                    self.tally,
                    "unauthenticated",
                    "POST",
                    "/entrar",
                    data={"token": f"wrong-{i}", "csrf": found.group(1)},
                )
                self._no_data("wrong sign-ins", answer)
                if answer is not None and answer.status_code == 429:
                    self._judge_429("throttled 429s", answer)
                    if "Muitas tentativas" not in answer.text:
                        self.failures.append("the throttled sign-in page does not say why")
                    return
            self.rounds_without_429["sign-in"] += 1

    def _judge_429(self, case: str, answer: httpx.Response) -> None:
        self.cases[case] += 1
        wait = answer.headers.get("Retry-After", "")
        if not wait.isdigit() or int(wait) < 1:
            self.failures.append(f"429 without a usable Retry-After: {wait!r}")

    # -- metrics and placeholders ------------------------------------------------------------
    def private_metrics(self) -> None:
        with self._client() as client:
            for label, headers in (
                ("no token", {}),
                ("a wrong token", {"Authorization": f"Bearer {self.metrics_token}x"}),
                ("the admin token", {"Authorization": f"Bearer {self.admin_token}"}),
            ):
                answer = call(
                    client,
                    self.tally,
                    "metrics",
                    "GET",
                    "/metrics",
                    headers={**self.stranger(), **headers},
                )
                self._no_data("private metrics", answer, metrics=True)
                if label == "no token" and answer is not None and answer.status_code != 200:
                    self.failures.append(f"/metrics without a token: {answer.status_code}")
            # The right token shows them, or the check above could never fail.
            right = {**self.stranger(), "Authorization": f"Bearer {self.metrics_token}"}
            answer = call(client, self.tally, "metrics", "GET", "/metrics", headers=right)
            if answer is not None and answer.status_code == 200 and BUSINESS not in answer.text:
                self.failures.append("/metrics with METRICS_TOKEN shows no business figures")

    def placeholder_secrets(self) -> None:
        company_id, run_id, _ = self.known()
        targets: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", ADMIN_READS[1], {}),
            ("GET", f"{SYNC}/status", {"params": {"runId": run_id}}),
            ("POST", f"{SYNC}/create", {"json": {"companyId": company_id, "mode": "incremental"}}),
            ("POST", "/api/cron/sync", {}),
            ("GET", "/metrics", {}),
        ]
        with self._client() as client:
            for placeholder in PLACEHOLDERS:
                for method, path, kwargs in targets:
                    headers = {**self.stranger(), "Authorization": f"Bearer {placeholder}"}
                    answer = call(
                        client,
                        self.tally,
                        "unauthenticated",
                        method,
                        path,
                        headers=headers,
                        **kwargs,
                    )
                    self._no_data("placeholder secrets", answer, metrics=path == "/metrics")

    # -- a cancel racing a step ---------------------------------------------------------------
    def cancel_racing_a_step(self) -> None:
        auth = {"Authorization": f"Bearer {self.admin_token}"}
        companies = "/api/admin/companies"
        with api_client(self.base, auth) as client:
            if self.race_company is None:
                body = {"name": "Soak corrida Ltda", "token": self.race_token}
                made = call(client, self.tally, "companies", "POST", companies, json=body)
                if made is None or made.status_code not in (200, 201):
                    return
                self.race_company = str(made.json()["company"]["id"])
            else:
                call(
                    client,
                    self.tally,
                    "companies",
                    "POST",
                    f"{companies}/{self.race_company}/activate",
                )
            try:
                self._race(client)
            finally:
                call(
                    client,
                    self.tally,
                    "companies",
                    "POST",
                    f"{companies}/{self.race_company}/deactivate",
                )

    def _race(self, client: httpx.Client) -> None:
        ask = {"companyId": self.race_company, "mode": "incremental"}
        created = call(client, self.tally, "create", "POST", f"{SYNC}/create", json=ask)
        if created is None or created.status_code not in (200, 409):
            return
        run_id = created.json().get("runId")
        if not run_id:
            return
        if created.status_code == 200:
            call(client, self.tally, "start", "POST", f"{SYNC}/start", json={"runId": run_id})
        together = threading.Barrier(2)
        answers: dict[str, httpx.Response | None] = {}

        def send(route: str) -> None:
            with api_client(self.base, dict(client.headers)) as own:
                together.wait(timeout=30)
                answers[route] = call(
                    own, self.tally, route, "POST", f"{SYNC}/{route}", json={"runId": run_id}
                )

        racers = [threading.Thread(target=send, args=(r,)) for r in ("step", "cancel")]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=90)
        codes = {r: a.status_code for r, a in answers.items() if a is not None}
        if len(codes) == 2 and all(code < 500 for code in codes.values()):
            self.cases["cancels raced by a step"] += 1
        # Whatever happened, the run must not stay active (it would block the next race).
        call(client, self.tally, "cancel", "POST", f"{SYNC}/cancel", json={"runId": run_id})

    # -- the report --------------------------------------------------------------------------
    def counts(self) -> list[tuple[str, int]]:
        """Each case and how often it was tried."""
        return [(name, self.cases[name]) for name in CASES]

    def summary(self) -> str:
        """The cases' counts, as the soak's summary line carries them."""
        return ", ".join(f"{name} {n}" for name, n in self.counts())


def placeholder_deployments(env: dict[str, str], workdir: Path) -> tuple[int, list[str]]:
    """Start the soak's own deployment again with `.env.example`'s placeholders, as a careless
    operator would: the API and a worker must each refuse at once, naming the secret.

    Returns how many refused, and what did not.
    """
    failures: list[str] = []
    refused = 0
    tries = [
        ("serve", ["serve", "--port", "1"], {"SYNC_ADMIN_TOKEN": "change-me"}, "SYNC_ADMIN_TOKEN"),
        ("serve", ["serve", "--port", "1"], {"CRON_SECRET": "change-me"}, "CRON_SECRET"),
        ("serve", ["serve", "--port", "1"], {"SECRET_KEY": PLACEHOLDERS[1]}, "SECRET_KEY"),
        ("worker", ["worker"], {"SYNC_ADMIN_TOKEN": "change-me"}, "SYNC_ADMIN_TOKEN"),
        ("beat", ["beat"], {"SECRET_KEY": PLACEHOLDERS[1]}, "SECRET_KEY"),
    ]
    for what, args, bad, named in tries:
        done = subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env={**env, **bad},
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        said = done.stdout + done.stderr
        if done.returncode != 0 and named in said and "Traceback" not in said:
            refused += 1
        else:
            failures.append(f"{what} with {bad} started or said {said[-200:]!r}")
    return refused, failures
