"""A faithful fake of Tiny ERP API v2, in-process (httpx transport) or as an HTTP server.

It speaks API v3 too, over the same accounts (so a v3 read agrees with v2 and the truth):
`sandbox.oauth` (Keycloak's authorisation page and token endpoint; `Sandbox.add_oauth_app`,
`oauth_auto_approve`, `oauth_lifetimes`, `oauth_counters`) and `sandbox.v3` (the resources
under `/public-api/v3`, their own read budget per account with `X-RateLimit-*` and 429,
`Sandbox.fail_v3` and the account's `Faults`). See those modules' docstrings.

Data that moves while a client reads it (see TINY_API_V2.md, "Data changes while you read it"):

- Listings are computed at each call over the current data; page numbers are no cursor.
  A bill paid between pages 1 and 2 of `situacao=aberto` moves every later record up, so one
  is never served; an order added with a date inside the window lands at its date and pushes
  the later ones down (one served twice).
- Explicit changes (Python; `POST /_sandbox/change {"token", "action", "id", ...}`):
  `pay_bill`, `partly_pay_bill` (amount, default half the saldo), `cancel_bill`,
  `delete_bill`, `cancel_order`, `delete_order`, `add_order` (dated), `move_stock` (delta,
  deposito), `set_product_situacao` (A/I/E), `add_product` (created at a moment). Bills are
  found by id whatever their kind. Deleted orders and bills answer 32 to `*.obter` and are
  in no listing; cancelled bills are listed only under `situacao=cancelada` (saldo kept).
- `Churn` (`Sandbox.set_churn`, `POST /_sandbox/churn`): a seeded batch of those changes
  before every `every_calls`-th call and at the call numbers in `at_calls`, counted from
  when it is set. `Sandbox.changes(token)` / `GET /_sandbox/changes` is the log: counts and
  ids per kind, and every event with the call it came before.
- `situacao=aberto` lists `aberto` and `parcial` bills. Tiny lists `parcial` as its own
  situacao and its docs do not say whether `aberto` includes it; the sandbox keeps "aberto =
  still owed", and `AccountSpec(open_includes_partial=False)` makes `aberto` strict so a
  client can be tested both ways. `parcial` lists only partly paid bills either way.
- Without an emission window a bill listing covers the whole account: the open set is a
  position. `Truth.payables_open_all` / `receivables_open_all`, `Sandbox.open_bills(token,
  kind)` and `GET /_sandbox/open_bills` are that set now.
- `produtos.pesquisa.php` without `situacao` lists active products only; `situacao=I` or
  `E` lists inactive or deleted ones.
- `lista.atualizacoes.estoque` consumes on read, like Tiny: a served page leaves the queue
  (what was page 2 is page 1 next time) until that product's stock moves again.
  `AccountSpec(stock_updates_consume=False)` keeps the queue.
- Odd values: `Sandbox.plant(token, id, field, value)`, `plant_in_listing` and
  `plant_values(token, service, field, values, position=0, **params)` (`POST
  /_sandbox/plant`) serve a value verbatim in one JSON field of a record wherever it is
  shown; `ODD_MONEY`, `ODD_TEXT`, `ODD_DATES`, `ODD_IDS` are the usual suspects.
  `Truth.planted` names the planted records; the truth keeps their real values.
- Tiny's clock: `Sandbox(clock_skew=timedelta(minutes=-10))` (or `POST /_sandbox/clock
  {"skew_seconds": -600}`) sets the sandbox's now apart from its clock; every answer carries
  it in the HTTP `Date` header. Dates and filters (`dataAtualizacao`, `dataCriacao`,
  `dataAlteracao`, `data_pedido`, `data_criacao`) are Brasília time (UTC-3).
- Limits per token: `AccountSpec(rate_limit_calls, rate_limit_window_seconds)` is the plan,
  enforced with code 6 over a sliding window (code 11 past `max_concurrent` in flight), and
  every answer to a known token carries it per minute in `x-limit-api` (10 calls in a 20 s
  window announce 30); `announce_limit=False` answers without the header. Over HTTP:
  `python -m sandbox --plan TOKEN=CALLS` (repeatable) or `POST /_sandbox/accounts`.
- `Sandbox.truth(token, start, end)` / `GET /_sandbox/truth` is the current state: window
  orders with their current situacao (`orders_deleted` apart), bills by situacao
  (`*_open`, `*_paid`, `*_cancelled`, `*_deleted`), active products with their balance
  (`products_inactive`, `products_deleted` apart), the open sets and the planted records.
"""

from __future__ import annotations

from sandbox.app import Sandbox
from sandbox.changes import Change, ChangeLog, Churn
from sandbox.data import AccountSpec
from sandbox.faults import Faults
from sandbox.limits import Counters
from sandbox.oddities import ODD_DATES, ODD_IDS, ODD_MONEY, ODD_TEXT, ODD_VALUES
from sandbox.server import make_server, serve
from sandbox.transport import SandboxTransport
from sandbox.truth import Truth

__all__ = [
    "ODD_DATES",
    "ODD_IDS",
    "ODD_MONEY",
    "ODD_TEXT",
    "ODD_VALUES",
    "AccountSpec",
    "Change",
    "ChangeLog",
    "Churn",
    "Counters",
    "Faults",
    "Sandbox",
    "SandboxTransport",
    "Truth",
    "make_server",
    "serve",
]
