"""What people read about a run, in Brazilian Portuguese: module labels and what a module verified.

The run's log line at a module's end (`verified_log_line`), the run page of the UI and
`tinysync runs show` (`verified_summary`) say the same thing from the module's `Verification`:

    Vendas verificadas: 512 no Tiny, 512 gravadas; 3 corrigidos (2 pagos, 1 excluído);
    1 registro ignorado: pedido 123, valor 'NaN'
    Verificado: 512 no Tiny, 512 aqui; 3 corrigidos; 1 registro ignorado: pedido 123, valor 'NaN'
"""

from __future__ import annotations

import re

from core.runs.model import Verification

MODULE_LABELS: dict[str, str] = {
    "vw_vendas": "Vendas",
    "vw_contas_receber_posicao": "Contas a receber (posição)",
    "vw_contas_pagar": "Contas a pagar",
    "vw_contas_pagas": "Contas pagas",
    "vw_contas_recebidas": "Contas recebidas",
    "vw_estoque": "Estoque",
}
#: Modules whose label is masculine singular ("Estoque verificado"); the rest are feminine plural.
_MASCULINE = frozenset({"vw_estoque"})
#: Kinds of correction (`Verification.corrected` keys), singular and plural.
CORRECTION_WORDS: dict[str, tuple[str, str]] = {
    "paid": ("pago", "pagos"),
    "partly_paid": ("pago em parte", "pagos em parte"),
    "canceled": ("cancelado", "cancelados"),
    "deleted": ("excluído", "excluídos"),
    "inactive": ("inativado", "inativados"),
    "changed": ("alterado", "alterados"),
    "moved": ("saldo alterado", "saldos alterados"),
    "deactivated": ("desativado", "desativados"),
}
#: Counters a module keeps beside its verification, as the log line says them.
COUNTER_WORDS: dict[str, tuple[str, str]] = {
    "rechecked": ("relido por não vir mais na listagem", "relidos por não virem mais na listagem"),
    "checked": ("saldo conferido", "saldos conferidos"),
    "queued": ("alteração lida da fila", "alterações lidas da fila"),
}


def module_label(key: str) -> str:
    """A module's name for people ("Vendas"), or its key when it has none."""
    return MODULE_LABELS.get(key, key)


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def _corrections(corrected: dict[str, int]) -> str:
    parts = []
    for kind, n in sorted(corrected.items(), key=lambda item: (-item[1], item[0])):
        if n:
            singular, plural = CORRECTION_WORDS.get(kind, (kind, kind))
            parts.append(_count(n, singular, plural))
    return ", ".join(parts)


def _set_aside(v: Verification) -> str:
    text = _count(v.set_aside, "registro ignorado", "registros ignorados")
    if v.set_aside_named:
        text += ": " + "; ".join(v.set_aside_named)
        if v.set_aside > len(v.set_aside_named):
            text += f" (e mais {v.set_aside - len(v.set_aside_named)})"
    return text


def _clauses(v: Verification, stored_word: str, *, detail: bool) -> str:
    clauses = [f"{v.listed} no Tiny, {v.stored} {stored_word}"]
    if v.corrected_total:
        corrected = _count(v.corrected_total, "corrigido", "corrigidos")
        if detail:
            corrected += f" ({_corrections(v.corrected)})"
        clauses.append(corrected)
    if v.set_aside:
        clauses.append(_set_aside(v))
    text = "; ".join(clauses)
    for note in v.unconfirmed:
        text += f". {note[:1].upper()}{note[1:]}"
    return text


def verified_log_line(key: str, v: Verification, counters: dict[str, int] | None = None) -> str:
    """The log line at a module's end, e.g. "Vendas verificadas: 512 no Tiny, 512 gravadas; …".

    `counters` adds what the module re-read or re-checked ("3 relidos por não virem mais na
    listagem", "10 saldos conferidos").
    """
    masculine = key in _MASCULINE
    verified = "verificado" if masculine else "verificadas"
    stored = "gravados" if masculine else "gravadas"
    text = f"{module_label(key)} {verified}: {_clauses(v, stored, detail=True)}"
    extra = [
        _count(n, *COUNTER_WORDS[name])
        for name, n in (counters or {}).items()
        if name in COUNTER_WORDS and n
    ]
    return text + "".join(f"; {part}" for part in extra)


def verified_summary(v: Verification) -> str:
    """The line the run page and the CLI show, e.g. "Verificado: 512 no Tiny, 512 aqui; …"."""
    return f"Verificado: {_clauses(v, 'aqui', detail=False)}"


def verified_needs_attention(v: Verification) -> bool:
    """Whether a person should look: records set aside, or something left unconfirmed."""
    return bool(v.set_aside or v.unconfirmed)


# -- the run's own log lines and errors -----------------------------------------------------
#: One label per mode, everywhere a person reads one (UI, log); the UI adds the days.
MODE_LABELS: dict[str, str] = {"incremental": "Rápido", "period": "Por mês"}
#: Tiny's error codes, in words (the code follows in parentheses).
TINY_CODE_WORDS: dict[int, str] = {
    1: "o token do Tiny está faltando",
    2: "o token do Tiny é inválido",
    5: "a API do Tiny está bloqueada para esta conta",
    6: "limite de chamadas por minuto do Tiny atingido",
    8: "a empresa está bloqueada no Tiny",
    10: "falta um parâmetro que o Tiny exige",
    11: "chamadas simultâneas demais ao Tiny",
    21: "a consulta traria registros demais",
    35: "o Tiny informou um erro inesperado",
    99: "o Tiny está em manutenção",
}


def mode_label(mode: str, incremental_days: int | None = None) -> str:
    """ "Rápido (30 dias)" or "Por mês"; the days only when given."""
    label = MODE_LABELS.get(str(mode), str(mode))
    if str(mode) == "incremental" and incremental_days:
        label += f" ({incremental_days} dias)"
    return label


def labels(keys: list[str] | tuple[str, ...]) -> str:
    """Module labels joined for a sentence: "Vendas, Estoque"."""
    return ", ".join(module_label(key) for key in keys)


def _day(iso: str) -> str:
    year, month, day = iso[:10].split("-")
    return f"{day}/{month}/{year}"


def run_created_line(mode: str, start: str, end: str) -> str:
    """ "Execução criada: Rápido, de 01/11/2026 a 01/12/2026"."""
    return f"Execução criada: {mode_label(mode)}, de {_day(start)} a {_day(end)}"


RUN_STARTED_LINE = "Execução iniciada"
CANCELED_BY_USER = "Cancelada pelo usuário"


def run_resumed_line(failed: list[str]) -> str:
    """The log line of a resumed run: which modules run again."""
    return f"Execução retomada: refazendo {labels(failed) or 'nada'}"


def failed_modules_message(failed: list[str]) -> str:
    """The run's `errorMessage` when modules failed: one short sentence, details elsewhere."""
    what = "1 módulo falhou" if len(failed) == 1 else f"{len(failed)} módulos falharam"
    return f"{what}: {labels(failed)}. Detalhes na página da execução."


def run_finished_line(
    status: str, processed: int, counts: dict[str, int], calls: int, failed: list[str]
) -> str:
    """The run's last line: how it ended, what each module processed, what it cost."""
    each = ", ".join(f"{module_label(key)} {n}" for key, n in counts.items())
    ended = "concluída com falhas" if failed else "concluída"
    text = (
        f"Execução {ended} ({status}): {processed} registros processados ({each}), "
        f"{calls} chamadas ao Tiny"
    )
    return text + (f"; falharam: {labels(failed)}" if failed else "")


def module_failed_line(key: str, message: str) -> str:
    """A module's failure, as its log line says it."""
    return f"{module_label(key)} falhou: {message}"


def tiny_error_text(exc: BaseException) -> str:
    """A Tiny error in Portuguese, from its type, code and service (never its English text)."""
    from core.errors import TinyError

    if not isinstance(exc, TinyError):
        return str(exc)
    service = getattr(exc, "service", None) or "o Tiny"
    code = getattr(exc, "code", None)
    # What Tiny itself said (its `erros`, in Portuguese) follows the code in the client's text.
    said = str(exc).split("): ", 1)[1] if "): " in str(exc) else ""
    tail = f": {said}" if said else ""
    if code in TINY_CODE_WORDS:
        return f"{TINY_CODE_WORDS[code]} em {service} (código {code}){tail}"
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("httpx"):
        if "Timeout" in type(cause).__name__:
            return f"o Tiny não respondeu {service} a tempo"
        return f"não foi possível falar com o Tiny em {service} ({type(cause).__name__})"
    if cause is not None:  # the body could not be read as Tiny's JSON
        return f"o Tiny respondeu {service} com um conteúdo que não é o JSON esperado"
    status = re.search(r"HTTP (\d{3})", str(exc))
    if status:
        return f"o Tiny respondeu HTTP {status.group(1)} em {service}"
    if code is not None:
        return f"o Tiny recusou {service} (código {code}){tail}"
    return f"o Tiny recusou {service}{tail}"


def pause_line(service: str, exc: BaseException, wait_seconds: float) -> str:
    """A back-off longer than the step: the run waits for Tiny's limit, then tries again."""
    return f"{tiny_error_text(exc)}; aguardando o limite do Tiny: {wait_seconds:.0f} s"


def retry_line(service: str, exc: BaseException, attempt: int, wait_seconds: float) -> str:
    """A short back-off inside the step: the call is tried again."""
    wait = f"{wait_seconds:.1f}".replace(".", ",")
    return f"{tiny_error_text(exc)}; nova tentativa em {wait} s (tentativa {attempt + 1})"
