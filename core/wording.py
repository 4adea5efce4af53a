"""What people read about a run, in Brazilian Portuguese: module labels and what a module verified.

The run's log line at a module's end (`verified_log_line`), the run page of the UI and
`tinysync runs show` (`verified_summary`) say the same thing from the module's `Verification`:

    Vendas verificadas: 512 no Tiny, 512 gravadas; 3 corrigidos (2 pagos, 1 excluído);
    1 registro ignorado: pedido 123, valor 'NaN'
    Verificado: 512 no Tiny, 512 aqui; 3 corrigidos; 1 registro ignorado: pedido 123, valor 'NaN'
"""

from __future__ import annotations

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
