"""Open receivables, the position (`vw_contas_receber_posicao`): every bill still owed to us.

`contas.receber.pesquisa.php` with `situacao=aberto` (and `parcial`), no emission window; what
those listings missed is re-read with `conta.receber.obter.php` (see `core.modules.bills`).
"""

from __future__ import annotations

from core.models import Receivable
from core.modules.bills import OpenBillsModule

MODULE = OpenBillsModule(
    key="vw_contas_receber_posicao",
    service="contas.receber.pesquisa.php",
    detail_service="conta.receber.obter.php",
    model=Receivable,
)
