"""Odd values planted into chosen records, served exactly as a careless ERP form stored them.

A planted value replaces one JSON field of one record (by id) wherever Tiny shows that
record: listings and `*.obter` answers. Strings are served as JSON strings, verbatim
(money comes as strings from Tiny); ints as JSON numbers. The account's real data is not
touched, so filters and truth still see the true values; `Truth.planted` names the records.
"""

from __future__ import annotations

from typing import Any

#: Money values a client must set aside (or, for the largest Numeric(16,2), store).
ODD_MONEY = (
    "Infinity",
    "NaN",
    "1e999",
    "123456789012345678.99",
    "99999999999999.99",
    "1.234,56",
    "1.234",
    "1,234",
    "",
)
#: Names with a NUL, a lone surrogate and control characters.
ODD_TEXT = ("Cliente\x00Nulo", "Cliente \ud800", "Cliente\x01\x07\x1b\x7f")
#: Impossible dates in Tiny's format.
ODD_DATES = ("31/02/2026", "00/00/0000")
#: An id one past the largest bigint.
ODD_IDS = (2**63,)
ODD_VALUES = {"money": ODD_MONEY, "text": ODD_TEXT, "dates": ODD_DATES, "ids": ODD_IDS}


def check_value(value: Any) -> Any:
    """A plantable value (str, int or None for JSON null), else TypeError."""
    if value is not None and not isinstance(value, str | int):
        raise TypeError("a planted value must be a string, an integer or None")
    return value


def apply_planted(payload: dict[str, Any], planted: dict[int, dict[str, Any]]) -> None:
    """Overwrite planted fields of every record in a service payload, in place.

    Payloads hold either one record wrapper ({"pedido": {...}}) or lists of them.
    """
    if not planted:
        return
    for value in payload.values():
        if isinstance(value, list):
            records = [r for wrapper in value for r in wrapper.values() if isinstance(r, dict)]
        elif isinstance(value, dict):
            records = [value]
        else:
            continue
        for record in records:
            odd = planted.get(record.get("id"))  # type: ignore[arg-type]
            if odd:
                record.update(odd)
