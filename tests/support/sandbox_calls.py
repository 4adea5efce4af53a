"""Helpers for the sandbox's own tests: a hand-moved clock and Tiny-style service calls."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx

# 15/06/2025 12:00 in Brasília.
NOW = datetime(2025, 6, 15, 15, 0, tzinfo=UTC)
TODAY = date(2025, 6, 15)
TOKEN = "tok-test"
BRASILIA = timezone(timedelta(hours=-3))
GENEROUS = {"rate_limit_calls": 1_000_000, "max_concurrent": 1_000}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move forward by a timedelta(**delta)."""
        self.now += timedelta(**delta)


class Api:
    """Calls services the way a Tiny client does and returns the `retorno` object."""

    def __init__(self, http: httpx.Client, token: str = TOKEN) -> None:
        self.http = http
        self.token = token

    def raw(self, service: str, method: str = "GET", **params: Any) -> httpx.Response:
        """The HTTP response of one call."""
        query = {"token": self.token, "formato": "json", **params}
        if method == "POST":
            return self.http.post(f"/{service}", data=query)
        return self.http.get(f"/{service}", params=query)

    def __call__(self, service: str, **params: Any) -> dict[str, Any]:
        response = self.raw(service, **params)
        assert response.status_code == 200
        return response.json()["retorno"]

    def all_pages(self, service: str, key: str, item: str, **params: Any) -> list[dict[str, Any]]:
        """Every record of a listing, following pagina until code 20/23."""
        records: list[dict[str, Any]] = []
        pagina = 1
        while True:
            retorno = self(service, pagina=pagina, **params)
            if retorno["status"] == "Erro":
                assert int(retorno["codigo_erro"]) in (20, 23), retorno
                return records
            records += [wrapper[item] for wrapper in retorno[key]]
            if pagina >= int(retorno["numero_paginas"]):
                return records
            pagina += 1


def error_code(retorno: dict[str, Any]) -> int:
    """codigo_erro as an int whichever type it came as."""
    assert retorno["status"] == "Erro" and retorno["status_processamento"] == "2"
    return int(retorno["codigo_erro"])


def tiny_datetime(moment: datetime) -> str:
    """A moment as Tiny's change filters take it: dd/mm/yyyy hh:mm:ss in Brasília time."""
    return moment.astimezone(BRASILIA).strftime("%d/%m/%Y %H:%M:%S")
