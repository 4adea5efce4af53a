"""Open payables (`vw_contas_pagar`): `contas.pagar.pesquisa.php` with `situacao=aberto`."""

from __future__ import annotations

from core.models import Payable
from core.modules.bills import BillsModule

MODULE = BillsModule(
    key="vw_contas_pagar", service="contas.pagar.pesquisa.php", situacao="aberto", model=Payable
)
