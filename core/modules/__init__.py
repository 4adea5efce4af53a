"""The sync modules, in the order a run executes them; one file each."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.modules.base import SyncModule

MODULE_KEYS: tuple[str, ...] = (
    "vw_vendas",
    "vw_contas_receber_posicao",
    "vw_contas_pagar",
    "vw_contas_pagas",
    "vw_contas_recebidas",
    "vw_estoque",
)


def load_module(key: str) -> SyncModule:
    """The module implementing `key` (imported on first use)."""
    if key not in MODULE_KEYS:
        raise KeyError(f"unknown sync module {key!r}")
    module: SyncModule = import_module(f"core.modules.{key}").MODULE
    return module
