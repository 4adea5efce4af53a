"""Paid payables (`vw_contas_pagas`): `contas.pagar.pesquisa.php` with `situacao=pago`."""

from __future__ import annotations

from core.models import Payable
from core.modules.bills import BillsModule

MODULE = BillsModule(
    key="vw_contas_pagas", service="contas.pagar.pesquisa.php", situacao="pago", model=Payable
)
