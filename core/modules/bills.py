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
from core.tiny import parse_date, parse_decimal, parse_int, parse_text
from core.upsert import upsert


def map_bill(company_id: str, record: dict[str, Any], *, receivable: bool) -> dict[str, Any] | None:
    """A `conta` record to a Payable/Receivable row; None when it has no usable id."""
    tiny_id = parse_int(record.get("id"))
    if tiny_id is None:
        return None
    row: dict[str, Any] = {
        "companyId": company_id,
        "tinyId": tiny_id,
        "nomeCliente": parse_text(record.get("nome_cliente"), 300),
        "historico": parse_text(record.get("historico"), 5000),
        "numeroDoc": parse_text(record.get("numero_doc"), 100),
        "dataEmissao": parse_date(record.get("data_emissao")),
        "dataVencimento": parse_date(record.get("data_vencimento")),
        "valor": parse_decimal(record.get("valor")),
        "saldo": parse_decimal(record.get("saldo")),
        "situacao": parse_text(record.get("situacao"), 30),
        "syncedAt": utcnow(),
    }
    if receivable:
        row["numeroBanco"] = parse_text(record.get("numero_banco"), 50)
        row["serieDoc"] = parse_text(record.get("serie_doc"), 50)
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
            rows = [map_bill(ctx.company_id, r, receivable=receivable) for r in records]
            good = [r for r in rows if r is not None]
            bad = len(rows) - len(good)
            ctx.commit(
                partial(upsert, model=self.model, rows=good),
                processed=len(good),
                skipped=bad,
                errors=[f"{bad} bills on page {page_no} had no id"] if bad else None,
            )

        return paged(ctx, self.service, "contas", "conta", params_for, write)
