"""Tiny API v3 parameters, paging and errors, as sandbox.v3_resources reads them.

Filters take ISO dates (`YYYY-MM-DD`) and change moments (`YYYY-MM-DD HH:MM:SS`, Brasília
time); lists page by `limit` (1..100, default 100) and `offset`, ordered by `orderBy` asc or
desc. Bad input is a 400 `{"mensagem", "detalhes": [{"campo", "mensagem"}]}`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from sandbox.common import BRT, from_us, parse_datetime_us, to_us
from sandbox.selection import Selection

MAX_LIMIT = 100

Params = Mapping[str, str]


class V3Error(Exception):
    """An answer other than 200: HTTP status, `mensagem` and `detalhes`."""

    def __init__(self, status: int, mensagem: str, detalhes: list[dict[str, str]] | None = None):
        super().__init__(mensagem)
        self.status, self.mensagem, self.detalhes = status, mensagem, detalhes or []


def invalid(campo: str, mensagem: str) -> V3Error:
    """A 400 about one parameter."""
    return V3Error(400, "Dados inválidos", [{"campo": campo, "mensagem": mensagem}])


# -- parameters -------------------------------------------------------------------------
def text(params: Params, name: str) -> str | None:
    """A parameter's stripped text, None when absent or blank."""
    value = params.get(name)
    return value.strip() if value is not None and value.strip() else None


def int_param(params: Params, name: str) -> int | None:
    """An integer parameter."""
    value = text(params, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid(name, f"{name} deve ser um número inteiro") from None


def date_param(params: Params, name: str) -> date | None:
    """A YYYY-MM-DD parameter."""
    value = text(params, name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(name, f"data inválida ({value}), use AAAA-MM-DD") from None


def moment_us(params: Params, name: str) -> int | None:
    """A change filter: 'YYYY-MM-DD HH:MM:SS' (or a date, its midnight) in Brasília time."""
    value = text(params, name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            return parse_datetime_us(value)  # Tiny's dd/mm/yyyy, which v3 clients still send
        except ValueError:
            raise invalid(name, f"data inválida ({value}), use AAAA-MM-DD HH:MM:SS") from None
    return to_us(moment if moment.tzinfo else moment.replace(tzinfo=BRT))


def page(selection: Selection, params: Params, render: Callable[[int], Any]) -> dict[str, Any]:
    """One page of a listing by limit, offset and orderBy, with its paginacao."""
    limit = int_param(params, "limit")
    limit = MAX_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"limit deve estar entre 1 e {MAX_LIMIT}")
    offset = int_param(params, "offset") or 0
    if offset < 0:
        raise invalid("offset", "offset não pode ser negativo")
    order = (text(params, "orderBy") or "asc").lower()
    if order not in ("asc", "desc"):
        raise invalid("orderBy", "orderBy deve ser asc ou desc")
    total = len(selection)
    positions = range(offset, min(offset + limit, total))
    indices = [selection[total - 1 - p] if order == "desc" else selection[p] for p in positions]
    return {
        "itens": [render(i) for i in indices],
        "paginacao": {"limit": limit, "offset": offset, "total": total},
    }


def iso(day: date | None) -> str | None:
    """A date as v3 writes it, null when absent."""
    return day.isoformat() if day else None


def moment(us: int) -> str:
    """A moment as v3 writes it, in Brasília time."""
    return from_us(us).strftime("%Y-%m-%d %H:%M:%S")


def path_id(value: str) -> int:
    """A record id from the path; not a number is a record that does not exist."""
    try:
        return int(value)
    except ValueError:
        detail = [{"campo": "id", "mensagem": f"{value} não é um id"}]
        raise V3Error(404, "Registro não encontrado", detail) from None
