"""What a person reads about a run is Portuguese: its log lines, errors and errorMessage."""

from __future__ import annotations

import httpx

from core.errors import TinyAuthError, TinyPermanentError, TinyRateLimitError, TinyTransientError
from core.wording import (
    failed_modules_message,
    mode_label,
    pause_line,
    retry_line,
    run_created_line,
    run_finished_line,
    tiny_error_text,
)


def test_tiny_errors_are_said_in_portuguese_with_tiny_s_own_words():
    refused = TinyPermanentError(
        "the company is blocked in Tiny in contas.pagar.pesquisa.php (code 8): Empresa bloqueada",
        code=8,
        service="contas.pagar.pesquisa.php",
    )
    assert tiny_error_text(refused) == (
        "a empresa está bloqueada no Tiny em contas.pagar.pesquisa.php (código 8): "
        "Empresa bloqueada"
    )
    token = TinyAuthError("the Tiny token is invalid (code 2)", code=2, service="x.php")
    assert tiny_error_text(token) == "o token do Tiny é inválido em x.php (código 2)"
    try:
        try:
            raise httpx.ReadTimeout("slow")
        except httpx.ReadTimeout as exc:
            raise TinyTransientError("Tiny did not answer", service="pedido.obter.php") from exc
    except TinyTransientError as exc:
        assert tiny_error_text(exc) == "o Tiny não respondeu pedido.obter.php a tempo"
    gateway = TinyTransientError("Tiny answered HTTP 502 for a.php", service="a.php")
    assert tiny_error_text(gateway) == "o Tiny respondeu HTTP 502 em a.php"


def test_a_pause_and_a_retry_say_how_long_the_run_waits():
    limit = TinyRateLimitError("too many (code 6)", wait_seconds=60, code=6, service="p.php")
    assert pause_line("p.php", limit, 60) == (
        "limite de chamadas por minuto do Tiny atingido em p.php (código 6); "
        "aguardando o limite do Tiny: 60 s"
    )
    assert retry_line("p.php", limit, 1, 1.5).endswith("; nova tentativa em 1,5 s (tentativa 2)")


def test_the_run_s_lines_name_modules_by_their_labels():
    assert run_created_line("period", "2026-11-01", "2026-11-30") == (
        "Execução criada: Por mês, de 01/11/2026 a 30/11/2026"
    )
    assert run_finished_line(
        "FAILED", 12, {"vw_vendas": 12, "vw_estoque": 0}, 30, ["vw_estoque"]
    ) == (
        "Execução concluída com falhas (FAILED): 12 registros processados (Vendas 12, Estoque 0), "
        "30 chamadas ao Tiny; falharam: Estoque"
    )
    assert failed_modules_message(["vw_vendas", "vw_contas_pagar"]) == (
        "2 módulos falharam: Vendas, Contas a pagar. Detalhes na página da execução."
    )
    assert failed_modules_message(["vw_estoque"]) == (
        "1 módulo falhou: Estoque. Detalhes na página da execução."
    )
    assert mode_label("incremental", 30) == "Rápido (30 dias)"
    assert mode_label("period", 30) == "Por mês"
