"""The sync modules, in the order a run executes them; one file each.

`MODULES` is the static registry: `run_step` takes it by default, and a test (or a deployment
that syncs less) passes a registry of its own instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.modules.base import SyncModule
from core.modules.vw_contas_pagar import MODULE as CONTAS_PAGAR
from core.modules.vw_contas_pagas import MODULE as CONTAS_PAGAS
from core.modules.vw_contas_receber_posicao import MODULE as CONTAS_RECEBER_POSICAO
from core.modules.vw_contas_recebidas import MODULE as CONTAS_RECEBIDAS
from core.modules.vw_estoque import MODULE as ESTOQUE
from core.modules.vw_vendas import MODULE as VENDAS

MODULES: tuple[SyncModule, ...] = (
    VENDAS,
    CONTAS_RECEBER_POSICAO,
    CONTAS_PAGAR,
    CONTAS_PAGAS,
    CONTAS_RECEBIDAS,
    ESTOQUE,
)

MODULE_KEYS: tuple[str, ...] = tuple(module.key for module in MODULES)


def module_for(key: str, modules: Iterable[SyncModule] = MODULES) -> SyncModule:
    """The module of `modules` implementing `key`."""
    for module in modules:
        if module.key == key:
            return module
    raise KeyError(f"unknown sync module {key!r}")
