"""Tiny's `retorno` envelope, its error messages and its JSON/XML renderings."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

# Messages as Tiny's error table words them (codes 1-99 of API v2).
MESSAGES: dict[int, str] = {
    1: "Token não informado",
    2: "Token inválido ou não encontrado",
    3: "XML mal formado ou com erros",
    4: "Erro de procedimento interno",
    5: "API bloqueada ou sem acesso",
    6: "API Bloqueada - Excedido o número de acessos a API, aguarde alguns minutos e tente "
    "novamente",
    7: "Espaço da empresa esgotado",
    8: "Empresa bloqueada",
    9: "Números de sequência em duplicidade",
    10: "Parâmetro não informado",
    11: "API Bloqueada - Excedido o número de acessos simultâneos a API, aguarde alguns "
    "segundos e tente novamente",
    20: "A consulta não retornou registros",
    21: "A consulta retornou muitos registros",
    22: "O xml tem mais registros do que o permitido por lote de envio",
    23: "A página que você está tentando obter não existe",
    30: "Erro de duplicidade de registro",
    31: "Erros de validação",
    32: "Registro não localizado",
    33: "Registro localizado em duplicidade",
    34: "Nota fiscal não autorizada",
    35: "Erro inesperado, tente novamente mais tarde",
    99: "Sistema em manutenção",
}


class ApiError(Exception):
    """A Tiny error answer: HTTP 200 with status Erro and this codigo_erro."""

    def __init__(self, code: int, detail: str | None = None) -> None:
        self.code = code
        self.message = MESSAGES.get(code, "Erro") + (f": {detail}" if detail else "")
        super().__init__(self.message)


def ok(payload: dict[str, Any]) -> dict[str, Any]:
    """Successful envelope around a service payload."""
    return {"retorno": {"status_processamento": "3", "status": "OK", **payload}}


def error(code: int, message: str, code_as_text: bool) -> dict[str, Any]:
    """Error envelope; Tiny sends codigo_erro sometimes as text and sometimes as a number."""
    return {
        "retorno": {
            "status_processamento": "2",
            "status": "Erro",
            "codigo_erro": str(code) if code_as_text else code,
            "erros": [{"erro": message}],
        }
    }


def render(envelope: dict[str, Any], as_json: bool) -> tuple[bytes, str]:
    """Body and content type: JSON when `formato=json`, else XML (Tiny's default)."""
    if as_json:
        try:
            body = json.dumps(envelope, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            # A lone surrogate (a planted odd value) has no UTF-8 form: escape it as \ud800.
            body = json.dumps(envelope).encode()
        return body, "application/json; charset=utf-8"
    xml = '<?xml version="1.0" encoding="UTF-8"?>' + _xml("retorno", envelope["retorno"])
    return xml.encode(errors="backslashreplace"), "text/xml; charset=utf-8"


def _xml(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(k, v) for k, v in value.items())
    elif isinstance(value, list):
        # Lists hold one-key wrappers ({"pedido": {...}}), which are the XML elements.
        inner = "".join(_xml(k, v) for item in value for k, v in item.items())
    elif value is None:
        inner = ""
    else:
        inner = escape(str(value))
    return f"<{tag}>{inner}</{tag}>"
