"""Where the modules read Tiny from: one interface, a v2 and a v3 implementation.

The modules speak in the v2 vocabulary they were written in: a listing is a service name
(`pedidos.pesquisa.php`) with its filters and a page number, a record is a service and an id,
and records come in v2's shape (`data_pedido`, `nome_cliente`, `situacao` "Cancelado"...),
which `core.values` and the modules map to rows. `V2Source` passes that straight to the v2
client; `core.v3.source.V3Source` asks the matching v3 resource (limit/offset, ISO dates,
Bearer) and gives its records back in the same shape, so checkpoints, truth checks, reports
and the UI are the same for both APIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from core.tiny import Page, RetryHook, TinyClient


class Source(Protocol):
    """One company's Tiny account, read the v2 way whatever API answers."""

    def list_page(
        self,
        service: str,
        list_key: str,
        item_key: str,
        params: dict[str, Any],
        page: int,
        *,
        on_retry: RetryHook | None = None,
    ) -> Page:
        """One page (from 1) of a listing; no records or no such page give an empty page."""
        ...

    def get_record(
        self, service: str, record_key: str, record_id: int, *, on_retry: RetryHook | None = None
    ) -> dict[str, Any] | None:
        """One record by id; None when Tiny does not have it."""
        ...


@dataclass
class V2Source:
    """Tiny API v2: the token in the form body, the envelope, pages by number."""

    client: TinyClient
    token: str
    account: str

    def list_page(
        self,
        service: str,
        list_key: str,
        item_key: str,
        params: dict[str, Any],
        page: int,
        *,
        on_retry: RetryHook | None = None,
    ) -> Page:
        return self.client.list_page(
            self.token,
            service,
            list_key,
            item_key,
            params,
            page,
            account=self.account,
            on_retry=on_retry,
        )

    def get_record(
        self, service: str, record_key: str, record_id: int, *, on_retry: RetryHook | None = None
    ) -> dict[str, Any] | None:
        return self.client.get_record(
            self.token, service, record_key, record_id, account=self.account, on_retry=on_retry
        )
