"""Bills (`contas`): one listing per module, filtered by situation and emission date.

The four bill modules differ only in the service, the situation and the table, so each of
their files declares a `BillsModule` with those three facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any

from core.models import Payable, Receivable, utcnow
from core.modules.base import ModuleContext
from core.modules.paging import paged
from core.upsert import upsert
from core.values import log_set_aside, map_records, parse_date, parse_id, parse_money, parse_text


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


@dataclass(frozen=True)
class BillsModule:
    """Lists `service` with `situacao` for the run's window into `model`."""

    key: str
    service: str
    situacao: str
    model: type[Payable] | type[Receivable]

    def run(self, ctx: ModuleContext) -> bool:
        """Page through the listing from the checkpoint; True when the last page is written."""
        receivable = self.model is Receivable

        def params_for(start: date, end: date) -> dict[str, Any]:
            return {"situacao": self.situacao, "data_ini_emissao": start, "data_fim_emissao": end}

        def write(records: list[dict[str, Any]], page_no: int) -> None:
            mapper = partial(map_bill, ctx.company_id, receivable=receivable)
            page = map_records(records, mapper, "conta")
            ctx.commit(
                partial(upsert, model=self.model, rows=page.rows),
                processed=len(page.rows),
                skipped=len(page.set_aside),
                errors=page.set_aside or None,
                verified=page.verification(),
            )
            log_set_aside(ctx.log_line, ctx.module, page.set_aside)

        return paged(ctx, self.service, "contas", "conta", params_for, write)
