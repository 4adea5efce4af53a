"""Bills (`contas`): the open position, whole, and the paid history, by emission date.

- `OpenBillsModule` (`vw_contas_pagar`, `vw_contas_receber_posicao`): every bill still owed,
  whatever its emission date — `situacao=aberto`, and `parcial` too unless Tiny's `aberto`
  already served partly paid bills. Then every stored bill still open here that those
  complete listings did not serve is re-read with `conta.*.obter.php` and takes Tiny's
  current situacao, saldo and valor (paid, partly paid, canceled...); one Tiny no longer
  has (code 32) is marked deleted. So the stored open set is Tiny's open set.
- `BillsModule` (`vw_contas_pagas`, `vw_contas_recebidas`): paid bills of the run's window.

Each module file declares one of them with its service, situation and table.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, update
from sqlalchemy.orm import Session

from core.errors import BadValue
from core.models import Payable, Receivable, utcnow
from core.modules.base import ModuleContext
from core.modules.paging import batched, mark_listed, paged, stored_ids_after
from core.runs.model import Verification
from core.upsert import upsert
from core.values import (
    log_set_aside,
    map_records,
    parse_date,
    parse_id,
    parse_money,
    parse_text,
    set_aside_note,
    set_aside_ref,
)

BillModel = type[Payable] | type[Receivable]
OPEN = "aberto"
PARTIAL = "parcial"
#: The open position has no emission window; this one stands for "all" (split on code 21).
WHOLE = (date(2000, 1, 1), date(2099, 12, 31))
RECHECK_BATCH = 20
#: What a re-read found, by Tiny's new situacao (anything else that differs is `changed`).
KIND_BY_SITUACAO = {"pago": "paid", PARTIAL: "partly_paid", "cancelada": "canceled"}


def map_bill(company_id: str, record: dict[str, Any], *, receivable: bool) -> dict[str, Any]:
    """A `conta` record to a Payable/Receivable row; raises BadValue for a value it cannot store."""
    row: dict[str, Any] = {
        "companyId": company_id,
        "tinyId": parse_id(record.get("id")),
        "nomeCliente": parse_text(record.get("nome_cliente"), "nome_cliente", 300),
        "historico": parse_text(record.get("historico"), "historico", 5000),
        "numeroDoc": parse_text(record.get("numero_doc"), "numero_doc", 100),
        "dataEmissao": parse_date(record.get("data_emissao"), "data_emissao"),
        "dataVencimento": parse_date(record.get("data_vencimento"), "data_vencimento"),
        "valor": parse_money(record.get("valor"), "valor"),
        "saldo": parse_money(record.get("saldo"), "saldo"),
        "situacao": parse_text(record.get("situacao"), "situacao", 30),
        "syncedAt": utcnow(),
    }
    if receivable:
        row["numeroBanco"] = parse_text(record.get("numero_banco"), "numero_banco", 50)
        row["serieDoc"] = parse_text(record.get("serie_doc"), "serie_doc", 50)
    return row


def _write_listing_page(
    ctx: ModuleContext, model: BillModel, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Store a listing page (rows marked listed); returns the rows stored."""
    mapper = partial(map_bill, ctx.company_id, receivable=model is Receivable)
    page = map_records(records, mapper, "conta")
    rows = mark_listed(page.rows)
    ctx.commit(
        partial(upsert, model=model, rows=rows),
        processed=len(rows),
        skipped=len(page.set_aside),
        errors=page.set_aside or None,
        verified=page.verification(),
    )
    log_set_aside(ctx.log_line, ctx.module, page.set_aside)
    return rows


@dataclass(frozen=True)
class BillsModule:
    """Lists `service` with `situacao` for the run's window into `model` (history)."""

    key: str
    service: str
    situacao: str
    model: BillModel

    def run(self, ctx: ModuleContext) -> bool:
        """Page through the listing from the checkpoint; True when the last page is written."""

        def params_for(start: date, end: date) -> dict[str, Any]:
            return {"situacao": self.situacao, "data_ini_emissao": start, "data_fim_emissao": end}

        def write(records: list[dict[str, Any]], page_no: int) -> None:
            _write_listing_page(ctx, self.model, records)

        return paged(ctx, self.service, "contas", "conta", params_for, write)


@dataclass(frozen=True)
class OpenBillsModule:
    """The whole open position of `model`: listed, then what the listings missed re-read.

    Checkpoint: `phase` (`aberto`, `parcial`, `recheck`), `partialInOpen` (Tiny's `aberto`
    served a partly paid bill, so `parcial` needs no listing of its own), `servedBy`
    (situacao → the `served` windows of its listing, see `paged`) and `after` (the last id
    re-read).
    """

    key: str
    service: str
    detail_service: str
    model: BillModel

    def run(self, ctx: ModuleContext) -> bool:
        """List the open bills, then re-read the stored open bills not served; True when done."""
        cp = ctx.checkpoint
        cp.setdefault("phase", OPEN)
        for situacao in (OPEN, PARTIAL):
            if cp["phase"] != situacao:
                continue
            if not self._list(ctx, situacao):
                return False
            served = cp.setdefault("servedBy", {})
            served[situacao] = cp.pop("served", [])
            if situacao == OPEN and cp.get("partialInOpen"):
                served[PARTIAL] = served[OPEN]
            cp["phase"] = PARTIAL if PARTIAL not in served else "recheck"
            ctx.commit()
        return self._recheck(ctx)

    def _list(self, ctx: ModuleContext, situacao: str) -> bool:
        def params_for(start: date, end: date) -> dict[str, Any]:
            if (start, end) == WHOLE:
                return {"situacao": situacao}
            return {"situacao": situacao, "data_ini_emissao": start, "data_fim_emissao": end}

        def write(records: list[dict[str, Any]], page_no: int) -> None:
            if situacao == OPEN and any(r.get("situacao") == PARTIAL for r in records):
                ctx.checkpoint["partialInOpen"] = True
            _write_listing_page(ctx, self.model, records)

        return paged(ctx, self.service, "contas", "conta", params_for, write, window=WHOLE)

    def _unserved(self, served_by: dict[str, list[list[str]]]) -> ColumnElement[bool]:
        """Stored bills of an open situacao that its listing's accepted pass did not serve."""
        model = self.model
        parts = []
        for situacao, windows in served_by.items():
            for start, end, since in windows:
                listed_since = datetime.fromisoformat(since)
                missed = or_(model.listedAt.is_(None), model.listedAt < listed_since)
                where = [model.situacao == situacao, missed]
                first, last = date.fromisoformat(start), date.fromisoformat(end)
                if (first, last) != WHOLE:
                    where.append(model.dataEmissao.between(first, last))
                parts.append(and_(*where))
        return or_(*parts) if parts else false()

    def _recheck(self, ctx: ModuleContext) -> bool:
        model = self.model
        unserved = self._unserved(ctx.checkpoint.get("servedBy") or {})

        def next_ids() -> list[int]:
            after = int(ctx.checkpoint.get("after") or 0)
            return stored_ids_after(ctx, model, after, RECHECK_BATCH, unserved)

        def write(records: dict[int, dict[str, Any] | None]) -> None:
            with ctx.session_factory() as session:
                stored = {
                    row.tinyId: (row.situacao, row.saldo, row.valor)
                    for row in session.execute(
                        select(model.tinyId, model.situacao, model.saldo, model.valor).where(
                            model.companyId == ctx.company_id, model.tinyId.in_(list(records))
                        )
                    )
                }
            changes, kinds, notes, named = _rechecked(records, stored)
            ctx.checkpoint["after"] = max(records)
            ctx.commit(
                partial(_write_rechecked, model=model, company_id=ctx.company_id, changes=changes),
                skipped=len(notes),
                errors=notes or None,
                counters={"rechecked": len(records)},
                verified=Verification(
                    corrected=dict(kinds), set_aside=len(notes), set_aside_named=named
                ),
            )
            log_set_aside(ctx.log_line, ctx.module, notes)

        return batched(ctx, self.detail_service, "conta", next_ids, write)


Stored = tuple[str | None, Decimal | None, Decimal | None]


def _rechecked(
    records: dict[int, dict[str, Any] | None], stored: dict[int, Stored]
) -> tuple[dict[int, dict[str, Any]], Counter[str], list[str], list[str]]:
    """What re-read bills change: new values by id, corrections by kind, set-aside notes."""
    now = utcnow()
    changes: dict[int, dict[str, Any]] = {}
    kinds: Counter[str] = Counter()
    notes: list[str] = []
    named: list[str] = []
    for tiny_id, record in records.items():
        if record is None:
            changes[tiny_id] = {"deletedAt": now, "syncedAt": now}
            kinds["deleted"] += 1
            continue
        try:
            current: Stored = (
                parse_text(record.get("situacao"), "situacao", 30),
                parse_money(record.get("saldo"), "saldo"),
                parse_money(record.get("valor"), "valor"),
            )
        except BadValue as exc:
            notes.append(set_aside_note("conta", tiny_id, exc))
            named.append(set_aside_ref("conta", tiny_id, exc))
            continue
        before = stored.get(tiny_id)
        if current == before:
            continue
        situacao, saldo, valor = current
        changed_situacao = before is None or situacao != before[0]
        kind = KIND_BY_SITUACAO.get(situacao or "") if changed_situacao else None
        kinds[kind or "changed"] += 1
        changes[tiny_id] = {"situacao": situacao, "saldo": saldo, "valor": valor, "syncedAt": now}
    return changes, kinds, notes, named


def _write_rechecked(
    session: Session, model: BillModel, company_id: str, changes: dict[int, dict[str, Any]]
) -> None:
    for tiny_id, values in changes.items():
        session.execute(
            update(model)
            .where(model.companyId == company_id, model.tinyId == tiny_id)
            .values(**values)
        )
