"""The sandbox's Tiny API v3 face, under `/public-api/v3`, over the same accounts as v2.

A call goes: route (404 unknown, 405 not GET) -> Bearer access token from sandbox.oauth ->
its account (401 `{"mensagem", "detalhes"}` when missing, unknown or expired) -> the
account's own v3 read budget (fixed windows, `AccountSpec.v3_rate_limit_calls` per
`v3_rate_limit_window_seconds`; every answer for an account carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset`, 429 with `Retry-After` over it) ->
forced failures (`Sandbox.fail_v3`) and random faults (the account's `Faults`, as v2:
"5xx" is a proxy's HTML 500/502/503, "code35" a JSON 500, "code99" a JSON 503, both 503s
with `Retry-After`; "timeout" and "malformed" as v2) -> the resource (sandbox.v3_resources),
under the account's lock, after the account's churn. Counters: the account's, with
services named "v3 /pedidos", "v3 /pedidos/{id}"...; statuses other than 200 in by_status.
Odd values: `Sandbox.plant_v3` puts a value (a `RawJson` is written verbatim, e.g. a number
no float holds) into one v3 field of a record wherever v3 shows it; v2's plants stay on v2.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from sandbox.faults import FAULT_HEADER, malformed_body, server_error
from sandbox.oauth import AccessDenied
from sandbox.v3_params import V3Error
from sandbox.v3_resources import LISTS, RECORDS

if TYPE_CHECKING:
    from sandbox.app import Sandbox

V3_MARK = "/public-api/v3"
RETRY_AFTER_SECONDS = 1
_SAMPLE_BODY = (
    b'{"itens":[{"id":1,"situacao":0,"numeroPedido":1,"dataCriacao":"2024-01-01",'
    b'"valor":"10.00"}],"paginacao":{"limit":100,"offset":0,"total":1}}'
)
_DENIED = {
    "missing": "Token de acesso não informado",
    "unknown": "Token de acesso inválido",
    "expired": "Token de acesso expirado",
}
_DENIED_DETAIL = {
    "missing": "Envie o cabeçalho Authorization: Bearer com o token de acesso",
    "unknown": "Este token de acesso não foi emitido para nenhum aplicativo",
    "expired": "Renove o token de acesso com o refresh token",
}

Response = tuple[int, list[tuple[str, str]], bytes]


class RawJson(str):
    """Text written into a v3 body verbatim: a planted odd value (1e999, 12345678901234567.89)."""


def dumps(value: Any) -> str:
    """JSON text with every Decimal written exactly, as a number (never through float)."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, RawJson):
        out.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON form")
        out.append(str(value))
    elif isinstance(value, dict):
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            out.append(("," if n else "") + json.dumps(str(key), ensure_ascii=False) + ":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        out.append(json.dumps(value, ensure_ascii=False))


def _body(status: int, data: Any, headers: list[tuple[str, str]]) -> Response:
    content = [("Content-Type", "application/json; charset=utf-8"), *headers]
    return status, content, dumps(data).encode("utf-8", errors="backslashreplace")


def _error(status: int, mensagem: str, headers: list[tuple[str, str]], *detalhes: Any) -> Response:
    return _body(status, _problem(mensagem, detalhes), headers)


@dataclass
class ForcedFailure:
    """`fail_v3`: answer `status` to matching calls (`remaining` None: until cleared)."""

    status: int
    retry_after: int
    remaining: int | None


class V3Face:
    """Answers v3 requests for a Sandbox (its accounts, clock, counters, faults and OAuth)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self._lock = threading.Lock()
        self._forced: dict[tuple[str | None, str | None], ForcedFailure] = {}
        self._planted: dict[str, dict[int, dict[str, Any]]] = {}  # token -> id -> {path: v}

    def plant(self, token: str, record_id: int, field: str, value: Any) -> None:
        """Serve `value` as `field` ("precos.preco" nests) of a record wherever v3 shows it."""
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError("a non-finite Decimal has no JSON form: plant RawJson('NaN')")
        if value is not None and not isinstance(value, str | int | Decimal):
            raise TypeError("a planted v3 value is a str, RawJson, int, Decimal or None")
        with self._lock:
            self._planted.setdefault(token, {}).setdefault(record_id, {})[field] = value

    def planted(self, token: str) -> dict[int, dict[str, Any]]:
        """The v3 plants of an account: record id -> {field: value}."""
        with self._lock:
            return {k: dict(v) for k, v in self._planted.get(token, {}).items()}

    def clear_planted(self, token: str) -> None:
        """Serve the true values again on the v3 face."""
        with self._lock:
            self._planted.pop(token, None)

    def _apply_planted(self, token: str, data: dict[str, Any]) -> None:
        planted = self.planted(token)
        if not planted:
            return
        records = data["itens"] if "paginacao" in data else [data]
        for record in records:
            for path, value in planted.get(record.get("id"), {}).items():  # type: ignore[arg-type]
                *parents, last = path.split(".")
                target = record
                for key in parents:
                    if not isinstance(target.get(key), dict):
                        target[key] = {}
                    target = target[key]
                target[last] = value

    def fail(
        self,
        token: str | None,
        resource: str | None,
        status: int,
        times: int | None = None,
        retry_after: int = RETRY_AFTER_SECONDS,
    ) -> None:
        """Answer `status` to v3 calls of an account (None: any) on a resource (None: any)."""
        if resource is not None and resource not in LISTS and resource not in RECORDS:
            raise ValueError(f"unknown v3 resource {resource!r}")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        with self._lock:
            self._forced[(token, resource)] = ForcedFailure(status, retry_after, times)

    def clear(self) -> None:
        """Remove every forced failure."""
        with self._lock:
            self._forced.clear()

    def _forced_failure(self, token: str, resource: str) -> ForcedFailure | None:
        with self._lock:
            for key in ((token, resource), (token, None), (None, resource), (None, None)):
                failure = self._forced.get(key)
                if failure is None:
                    continue
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        del self._forced[key]
                return failure
        return None

    def respond(self, environ: dict[str, Any], in_process: bool) -> Response:
        """Answer one request whose path holds V3_MARK."""
        request = Request(environ)
        parts = [p for p in request.path.split(V3_MARK, 1)[1].split("/") if p]
        resource = parts[0] if parts else ""
        if len(parts) == 1 and resource in LISTS:
            name = f"v3 /{resource}"
        elif len(parts) == 2 and resource in RECORDS:
            name = f"v3 /{resource}/{{id}}"
        else:
            return _error(404, f"Recurso não encontrado: {request.path}", [])
        if request.method != "GET":
            return _error(405, "Método não permitido: o sandbox só lê pela API v3", [])
        header = request.headers.get("Authorization", "")
        bearer = header[7:].strip() if header[:7].lower() == "bearer " else ""
        challenge = [("WWW-Authenticate", 'Bearer realm="tiny", error="invalid_token"')]
        try:
            token = self.sb._oauth.account_of(bearer)
        except AccessDenied as exc:
            detail = {"campo": "Authorization", "mensagem": _DENIED_DETAIL[exc.reason]}
            return _error(401, _DENIED[exc.reason], challenge, detail)
        if not self.sb.has_account(token) and self.sb.auto_accounts:
            self.sb.ensure_account(token)
        if not self.sb.has_account(token):
            return _error(401, "A conta deste aplicativo não existe mais", challenge)
        account = self.sb.account(token)
        counters = self.sb._counters
        counters.call(token, name)

        def answer(status: int, data: Any, headers: list[tuple[str, str]]) -> Response:
            counters.status(token, status)
            return _body(status, data, headers)

        spec = account.spec
        accepted, remaining, reset = self.sb._v3_rate.acquire(
            token, spec.v3_rate_limit_calls, spec.v3_rate_limit_window_seconds
        )
        headers = [
            ("X-RateLimit-Limit", str(spec.v3_rate_limit_calls)),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset)),
        ]
        if not accepted:
            message = "Limite de requisições excedido, aguarde e tente novamente"
            return answer(429, _problem(message), [("Retry-After", str(reset)), *headers])
        forced = self._forced_failure(token, resource)
        if forced is not None:
            status = forced.status
            if status in (429, 503):
                headers.insert(0, ("Retry-After", str(forced.retry_after)))
            return answer(status, _problem(_FORCED.get(status, "Erro")), headers)
        kind, rng = self.sb._injector(token).draw()
        if kind is not None:
            counters.fault(token, kind)
        retry = [("Retry-After", str(RETRY_AFTER_SECONDS))]
        if kind == "5xx":
            status, page = server_error(rng)
            return status, [("Content-Type", "text/html"), *(retry if status == 503 else [])], page
        if kind == "code35":
            return answer(500, _problem("Erro inesperado, tente novamente mais tarde"), headers)
        if kind == "code99":
            return answer(503, _problem("Sistema em manutenção"), retry + headers)
        if kind == "malformed":
            body = malformed_body(rng, _SAMPLE_BODY)
            return 200, [("Content-Type", "application/json"), *headers], body
        if kind == "timeout":
            if in_process:
                return 200, [(FAULT_HEADER, "timeout"), *headers], b""
            time.sleep(self.sb.timeout_sleep_seconds)
        if self.sb.latency_seconds:
            time.sleep(self.sb.latency_seconds)
        params = {key: value for key, value in request.args.items()}
        try:
            with account.lock:
                now_us = self.sb.now_us()
                account.before_call(now_us)
                if len(parts) == 1:
                    data = LISTS[resource](account, params, now_us)
                else:
                    data = RECORDS[resource](account, params, now_us, parts[1])
        except V3Error as exc:
            return answer(exc.status, _problem(exc.mensagem, exc.detalhes), headers)
        self._apply_planted(token, data)
        return answer(200, data, headers)


_FORCED = {
    429: "Limite de requisições excedido, aguarde e tente novamente",
    500: "Erro interno do servidor",
    503: "Serviço indisponível, tente novamente mais tarde",
}


def _problem(mensagem: str, detalhes: Iterable[Any] = ()) -> dict[str, Any]:
    return {"mensagem": mensagem, "detalhes": list(detalhes)}
