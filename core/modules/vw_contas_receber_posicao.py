"""Open receivables, the position (`vw_contas_receber_posicao`): `situacao=aberto`."""

from __future__ import annotations

from core.models import Receivable
from core.modules.bills import BillsModule

MODULE = BillsModule(
    key="vw_contas_receber_posicao",
    service="contas.receber.pesquisa.php",
    situacao="aberto",
    model=Receivable,
)
