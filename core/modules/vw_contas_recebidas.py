"""Received receivables (`vw_contas_recebidas`): `contas.receber.pesquisa.php`, `pago`."""

from __future__ import annotations

from core.models import Receivable
from core.modules.bills import BillsModule

MODULE = BillsModule(
    key="vw_contas_recebidas",
    service="contas.receber.pesquisa.php",
    situacao="pago",
    model=Receivable,
)
