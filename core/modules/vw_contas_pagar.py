"""Open payables, the position (`vw_contas_pagar`): every bill to pay still owed.

`contas.pagar.pesquisa.php` with `situacao=aberto` (and `parcial`), no emission window; what
those listings missed is re-read with `conta.pagar.obter.php` (see `core.modules.bills`).
"""

from __future__ import annotations

from core.models import Payable
from core.modules.bills import OpenBillsModule

MODULE = OpenBillsModule(
    key="vw_contas_pagar",
    service="contas.pagar.pesquisa.php",
    detail_service="conta.pagar.obter.php",
    model=Payable,
)
