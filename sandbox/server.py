"""The Sandbox as a threaded HTTP server, with a JSON admin surface under /_sandbox/."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.serving import make_server as werkzeug_make_server
from werkzeug.wrappers import Request, Response

from sandbox.app import Sandbox
from sandbox.changes import FIELD_NAMES as _CHURN_FIELDS
from sandbox.changes import Churn
from sandbox.data import AccountSpec
from sandbox.faults import Faults
from sandbox.v3 import RawJson

ADMIN_MARK = "/_sandbox/"
_SPEC_FIELDS = {f.name for f in dataclasses.fields(AccountSpec)}
_FAULT_FIELDS = {f.name for f in dataclasses.fields(Faults)}


class AdminError(Exception):
    """An admin request the sandbox refuses, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _int(body: dict[str, Any], name: str, default: int) -> int:
    try:
        return int(body.get(name, default))
    except (TypeError, ValueError):
        raise AdminError(400, f"{name} must be an integer") from None


class AdminApp:
    """WSGI app: /_sandbox/* drives the sandbox, every other path is the fake Tiny API."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._routes: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
            ("GET", "health"): lambda body: {"ok": True},
            ("POST", "accounts"): self._accounts,
            ("POST", "faults"): self._faults,
            ("POST", "fail_service"): self._fail_service,
            ("POST", "clear_faults"): lambda body: self.sandbox.clear_faults(),
            ("POST", "evolve"): self._evolve,
            ("GET", "counters"): self._counters,
            ("GET", "truth"): self._truth,
            ("POST", "reset_counters"): lambda body: self.sandbox.reset_counters(),
            ("POST", "churn"): self._churn,
            ("POST", "change"): self._change,
            ("GET", "changes"): lambda body: self.sandbox.changes(str(self._token(body))).to_json(),
            ("POST", "plant"): self._plant,
            ("GET", "planted"): self._planted,
            ("POST", "clear_planted"): lambda body: self.sandbox.clear_planted(
                str(self._token(body))
            ),
            ("GET", "open_bills"): self._open_bills,
            ("GET", "clock"): lambda body: self._clock_state(),
            ("POST", "clock"): self._clock,
            ("POST", "oauth_app"): self._oauth_app,
            ("POST", "oauth"): self._oauth,
            ("GET", "oauth_counters"): lambda body: self.sandbox.oauth_counters(
                str(body.get("client_id") or "")
            ),
            ("POST", "fail_v3"): self._fail_v3,
            ("POST", "plant_v3"): self._plant_v3,
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if ADMIN_MARK not in path:
            return self.sandbox(environ, start_response)
        response = self._admin(Request(environ), path)
        response.headers["Date"] = format_datetime(self.sandbox.now(), usegmt=True)
        return response(environ, start_response)

    def _admin(self, request: Request, path: str) -> Response:
        action = path.split(ADMIN_MARK, 1)[1].strip("/")
        route = self._routes.get((request.method, action))
        if route is None:
            known = any(name == action for _, name in self._routes)
            status = 405 if known else 404
            return _json({"error": f"no admin route {request.method} {action}"}, status)
        body: dict[str, Any] = dict(request.args.items())
        payload = request.get_json(silent=True) if request.method == "POST" else None
        body.update(payload if isinstance(payload, dict) else dict(request.form.items()))
        try:
            result = route(body)
        except AdminError as exc:
            return _json({"error": str(exc)}, exc.status)
        except KeyError as exc:
            return _json({"error": str(exc.args[0])}, 404)
        except (TypeError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(result if result is not None else {"ok": True})

    def _token(self, body: dict[str, Any], required: bool = True) -> str | None:
        token = body.get("token") or None
        if required and token is None:
            raise AdminError(400, "token is required")
        return token

    def _accounts(self, body: dict[str, Any]) -> dict[str, Any]:
        token = self._token(body)
        unknown = set(body) - _SPEC_FIELDS - {"token"}
        if unknown:
            raise AdminError(400, f"unknown account fields: {sorted(unknown)}")
        spec = AccountSpec(**{k: v for k, v in body.items() if k in _SPEC_FIELDS})
        self.sandbox.add_account(str(token), spec)
        return {"ok": True, "token": token}

    def _faults(self, body: dict[str, Any]) -> None:
        token = self._token(body, required=False)
        unknown = set(body) - _FAULT_FIELDS - {"token"}
        if unknown:
            raise AdminError(400, f"unknown fault fields: {sorted(unknown)}")
        values: dict[str, Any] = {
            k: int(v) if k == "seed" else float(v) for k, v in body.items() if k != "token"
        }
        faults = Faults(**values)
        if token is None:
            self.sandbox.faults = faults
        else:
            self.sandbox.set_faults(token, faults)

    def _fail_service(self, body: dict[str, Any]) -> None:
        if not body.get("service"):
            raise AdminError(400, "service is required")
        token = self._token(body, required=False)
        self.sandbox.fail_service(token, str(body["service"]), _int(body, "code", 35))

    def _evolve(self, body: dict[str, Any]) -> None:
        self.sandbox.evolve(
            str(self._token(body)),
            new_orders=_int(body, "new_orders", 5),
            status_changes=_int(body, "status_changes", 5),
            payments=_int(body, "payments", 5),
        )

    def _counters(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.sandbox.counters(self._token(body, required=False)).to_json()

    def _truth(self, body: dict[str, Any]) -> dict[str, Any]:
        token = str(self._token(body))
        try:
            start, end = date.fromisoformat(body["start"]), date.fromisoformat(body["end"])
        except (KeyError, ValueError):
            raise AdminError(400, "start and end are required, as YYYY-MM-DD") from None
        return self.sandbox.truth(token, start, end).to_json()

    def _churn(self, body: dict[str, Any]) -> dict[str, Any]:
        token = str(self._token(body))
        unknown = set(body) - _CHURN_FIELDS - {"token"}
        if unknown:
            raise AdminError(400, f"unknown churn fields: {sorted(unknown)}")
        churn = Churn(**{k: v for k, v in body.items() if k in _CHURN_FIELDS})
        self.sandbox.set_churn(token, churn)
        return {"ok": True, "churn": dataclasses.asdict(churn)}

    def _change(self, body: dict[str, Any]) -> dict[str, Any]:
        token = str(self._token(body))
        action = body.get("action")
        record_id = _int(body, "id", 0)
        sb = self.sandbox
        simple = {
            "pay_bill": sb.pay_bill,
            "cancel_bill": sb.cancel_bill,
            "delete_bill": sb.delete_bill,
            "cancel_order": sb.cancel_order,
            "delete_order": sb.delete_order,
        }
        if action in simple:
            simple[str(action)](token, record_id)
            return {"ok": True, "id": record_id}
        if action == "partly_pay_bill":
            amount = Decimal(str(body["amount"])) if body.get("amount") is not None else None
            return {
                "ok": True,
                "id": record_id,
                "amount": str(sb.partly_pay_bill(token, record_id, amount)),
            }
        if action == "move_stock":
            sb.move_stock(
                token, record_id, Decimal(str(body["delta"])), body.get("deposito") or "Geral"
            )
            return {"ok": True, "id": record_id}
        if action == "set_product_situacao":
            sb.set_product_situacao(token, record_id, str(body["situacao"]))
            return {"ok": True, "id": record_id}
        if action == "add_order":
            dated = body.get("dated")
            when: datetime | date | None = None
            if dated:
                when = datetime.fromisoformat(dated) if "T" in dated else date.fromisoformat(dated)
            return {"ok": True, "id": sb.add_order(token, when)}
        if action == "add_product":
            created = body.get("created_at")
            return {
                "ok": True,
                "id": sb.add_product(token, datetime.fromisoformat(created) if created else None),
            }
        raise AdminError(400, f"unknown change action {action!r}")

    def _plant(self, body: dict[str, Any]) -> dict[str, Any]:
        token = str(self._token(body))
        if not body.get("field"):
            raise AdminError(400, "field is required")
        field = str(body["field"])
        if body.get("service"):
            params = body.get("params") or {}
            if not isinstance(params, dict):
                raise AdminError(400, "params must be an object")
            values = body["values"] if "values" in body else [body.get("value")]
            ids = self.sandbox.plant_values(
                token, str(body["service"]), field, values, _int(body, "position", 0), **params
            )
            return {"ok": True, "ids": ids}
        if "id" not in body:
            raise AdminError(400, "id or service is required")
        self.sandbox.plant(token, _int(body, "id", 0), field, body.get("value"))
        return {"ok": True, "ids": [_int(body, "id", 0)]}

    def _planted(self, body: dict[str, Any]) -> dict[str, Any]:
        planted = self.sandbox.planted(str(self._token(body)))
        return {str(k): v for k, v in planted.items()}

    def _open_bills(self, body: dict[str, Any]) -> dict[str, Any]:
        token = str(self._token(body))
        rows = self.sandbox.open_bills(token, str(body.get("kind") or "pagar"))
        return {str(k): {f: _plain(v) for f, v in row.items()} for k, row in rows.items()}

    def _clock_state(self) -> dict[str, Any]:
        return {
            "now": self.sandbox.now().isoformat(),
            "skew_seconds": self.sandbox.clock_skew.total_seconds(),
        }

    def _clock(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            skew = float(body.get("skew_seconds", 0))
        except (TypeError, ValueError):
            raise AdminError(400, "skew_seconds must be a number") from None
        self.sandbox.clock_skew = timedelta(seconds=skew)
        return self._clock_state()

    def _oauth_app(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = ("client_id", "client_secret", "redirect_uri", "token")
        missing = [name for name in fields if not body.get(name)]
        if missing:
            raise AdminError(400, f"required: {', '.join(missing)}")
        self.sandbox.add_oauth_app(*(str(body[name]) for name in fields))
        return {"ok": True, "client_id": body["client_id"]}

    def _oauth(self, body: dict[str, Any]) -> dict[str, Any]:
        """Auto-approval and lifetimes (seconds) of the sandbox's OAuth."""
        if "auto_approve" in body:
            value = body["auto_approve"]
            self.sandbox.oauth_auto_approve = value is True or str(value).lower() == "true"
        lifetimes = {k: float(body[k]) for k in ("access", "refresh", "code") if k in body}
        self.sandbox.oauth_lifetimes(**lifetimes)
        oauth = self.sandbox._oauth
        return {
            "auto_approve": oauth.auto_approve,
            "access": oauth.access_seconds,
            "refresh": oauth.refresh_seconds,
            "code": oauth.code_seconds,
        }

    def _plant_v3(self, body: dict[str, Any]) -> dict[str, Any]:
        """{"token", "id", "field", "value", "raw"}: raw text is written verbatim."""
        if not body.get("field"):
            raise AdminError(400, "field is required")
        value = body.get("value")
        if body.get("raw") in (True, "true", "1"):
            value = RawJson(str(value))
        elif isinstance(value, float):
            value = Decimal(str(value))
        record_id = _int(body, "id", 0)
        self.sandbox.plant_v3(str(self._token(body)), record_id, str(body["field"]), value)
        return {"ok": True, "id": record_id}

    def _fail_v3(self, body: dict[str, Any]) -> None:
        times = _int(body, "times", 0) or None
        self.sandbox.fail_v3(
            self._token(body, required=False),
            body.get("resource") or None,
            _int(body, "status", 503),
            times,
            _int(body, "retry_after", 1),
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class _Handler(WSGIRequestHandler):
    # Keep-alive, like the real API behind its load balancer; every answer has Content-Length.
    protocol_version = "HTTP/1.1"

    def send_response(self, code: int, message: str | None = None) -> None:
        """Status line and Server header; the Date header is the app's (Tiny's clock)."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())


class _QuietHandler(_Handler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip the per-request access log line."""


def make_server(
    sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True
) -> BaseWSGIServer:
    """A threaded server for the sandbox (port 0 picks a free one: see `.server_port`)."""
    handler = _QuietHandler if quiet else _Handler
    return werkzeug_make_server(
        host, port, AdminApp(sandbox), threaded=True, request_handler=handler
    )


def serve(
    sandbox: Sandbox, host: str = "127.0.0.1", port: int = 8800, *, quiet: bool = False
) -> None:
    """Serve the sandbox over HTTP until interrupted (blocks)."""
    server = make_server(sandbox, host, port, quiet=quiet)
    try:
        server.serve_forever()
    finally:
        server.server_close()
