"""The one place where Tiny's raw values become stored ones, or a `BadValue` that says why not.

Real ERP data carries what a form let through: "NaN", "1.234,56", absurd magnitudes, NUL,
lone surrogates, "31/02/2026". Each parser returns the value to store (None for Tiny's empty
strings: every column they feed is nullable) or raises `BadValue(field, value, reason)`.
A module maps a page with `map_records`: a record with a bad value is set aside and named,
the rest of the page is stored.

Choices, per kind of value:

- money: exact decimal text (never through float), rounded to cents with ROUND_HALF_EVEN
  (ABNT NBR 5891); |x| < 10**14, what `Numeric(16,2)` holds. Brazilian "1.234,56", US
  "1,234.56" and plain "1234.56" / "1234,56" parse; "1.234" and "1,234" (one separator
  followed by exactly three digits) could be a thousand or one and a bit, and are set aside.
- quantities (`Numeric(16,4)`): the same, to 4 places, |x| < 10**12; Tiny writes quantities
  with a decimal point ("1.234" is one and a bit), so only "1,234" is ambiguous there.
- ids: positive integers within bigint; an optional id of "", None or 0 is None.
- text: NUL and other control characters (but tab and newlines) are removed and a lone
  surrogate becomes U+FFFD, both logged; then cut to the column's length. Never rejected.
- dates: real `dd/mm/yyyy` (or ISO `yyyy-mm-dd`) dates; "31/02/2026" and "00/00/0000" are
  set aside, "" is None.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from core.errors import BadValue, shown
from core.runs.model import SET_ASIDE_NAMED, Verification

log = logging.getLogger(__name__)

BIGINT_MAX = 2**63 - 1
CENT = Decimal("0.01")
MONEY_LIMIT = Decimal(10) ** 14
QUANTITY_STEP = Decimal("0.0001")
QUANTITY_LIMIT = Decimal(10) ** 12
#: Set-aside records named one by one in a run's log per page; the rest are counted.
LOGGED_PER_PAGE = 20

NOT_A_NUMBER = "não é um número"
AMBIGUOUS = "é ambíguo: o separador pode ser de milhar ou de decimais"
NOT_AN_ID = "não é um id válido"
NOT_A_DATE = "não é uma data dd/mm/aaaa"
NO_SUCH_DATE = "é uma data que não existe"

_NUMBER = re.compile(r"([+-]?)([0-9.,]+)")
_GROUPED = {".": re.compile(r"[1-9]\d{0,2}(\.\d{3})+"), ",": re.compile(r"[1-9]\d{0,2}(,\d{3})+")}
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


# -- numbers ----------------------------------------------------------------------------
def parse_money(value: Any, field: str) -> Decimal | None:
    """An amount in cents' precision from Tiny's decimal strings; None when empty."""
    return _bounded(
        _decimal(value, field, lone_dot_is_decimal=False), value, field, CENT, MONEY_LIMIT
    )


def parse_quantity(value: Any, field: str) -> Decimal | None:
    """A quantity (stock, item count) to 4 places; None when empty."""
    number = _decimal(value, field, lone_dot_is_decimal=True)
    return _bounded(number, value, field, QUANTITY_STEP, QUANTITY_LIMIT)


def _bounded(
    number: Decimal | None, value: Any, field: str, step: Decimal, limit: Decimal
) -> Decimal | None:
    if number is None:
        return None
    too_large = f"passa do limite da coluna (±{limit - step:f})".replace(".", ",")
    if number and number.adjusted() >= limit.adjusted():
        raise BadValue(field, value, too_large)
    rounded = number.quantize(step, rounding=ROUND_HALF_EVEN)
    if abs(rounded) >= limit:
        raise BadValue(field, value, too_large)
    return rounded


def _decimal(value: Any, field: str, *, lone_dot_is_decimal: bool) -> Decimal | None:
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise BadValue(field, value, NOT_A_NUMBER)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise BadValue(field, value, NOT_A_NUMBER)
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadValue(field, value, NOT_A_NUMBER)
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise BadValue(field, value, NOT_A_NUMBER)
    text = value.strip()
    if not text:
        return None
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise BadValue(field, value, NOT_A_NUMBER)
    sign, body = match.groups()
    digits = _plain_digits(body, value, field, lone_dot_is_decimal)
    try:
        return Decimal(sign + digits)
    except InvalidOperation as exc:  # the pattern above should make this unreachable
        raise BadValue(field, value, NOT_A_NUMBER) from exc


def _plain_digits(body: str, value: Any, field: str, lone_dot_is_decimal: bool) -> str:
    """`body` ("1.234,56", "1234.5", "1,234,567") as plain digits with a decimal point."""
    separators = [s for s in ".," if s in body]
    if not separators:
        return body
    if len(separators) == 2:
        point = "," if body.rfind(",") > body.rfind(".") else "."
        whole, _, fraction = body.rpartition(point)
        group = "." if point == "," else ","
        if point in whole or not fraction.isdigit():
            raise BadValue(field, value, NOT_A_NUMBER)
        if not (whole.isdigit() or _GROUPED[group].fullmatch(whole)):
            raise BadValue(field, value, NOT_A_NUMBER)
        return whole.replace(group, "") + "." + fraction
    (sep,) = separators
    if body.count(sep) > 1:  # "1.234.567": only thousands can repeat
        if not _GROUPED[sep].fullmatch(body):
            raise BadValue(field, value, NOT_A_NUMBER)
        return body.replace(sep, "")
    whole, _, fraction = body.partition(sep)
    if not fraction.isdigit() or not (whole == "" or whole.isdigit()):
        raise BadValue(field, value, NOT_A_NUMBER)
    if _GROUPED[sep].fullmatch(body) and not (sep == "." and lone_dot_is_decimal):
        raise BadValue(field, value, AMBIGUOUS)
    return (whole or "0") + "." + fraction


# -- ids --------------------------------------------------------------------------------
def parse_id(value: Any, field: str = "id") -> int:
    """A record's Tiny id: a positive integer within bigint (required)."""
    number = parse_optional_id(value, field)
    if number is None:
        raise BadValue(field, value, "está vazio")
    return number


def parse_optional_id(value: Any, field: str) -> int | None:
    """An id that may be absent ("", None or 0 are None); otherwise as `parse_id`."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise BadValue(field, value, NOT_AN_ID)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str | Decimal):
        text = str(value).strip()
        if not text:
            return None
        if not text.isascii() or not text.isdigit():
            raise BadValue(field, value, NOT_AN_ID)
        number = int(text)
    else:
        raise BadValue(field, value, NOT_AN_ID)
    if number == 0:
        return None
    if not 0 < number <= BIGINT_MAX:
        raise BadValue(field, value, NOT_AN_ID + " (fora do limite do banco)")
    return number


# -- text -------------------------------------------------------------------------------
def parse_text(value: Any, field: str, limit: int) -> str | None:
    """Text without NUL/control characters or lone surrogates, cut to `limit`; None if empty."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if not text:
        return None
    cleaned = _SURROGATE.sub("\ufffd", _CONTROL.sub("", text))
    if cleaned != text:
        log.info("%s: removed control characters or lone surrogates from %s", field, shown(text))
    return cleaned[:limit] or None


# -- dates ------------------------------------------------------------------------------
def parse_date(value: Any, field: str) -> date | None:
    """A real `dd/mm/yyyy` (or `yyyy-mm-dd`) date, a time after it ignored; None if empty."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    head, rest = text[:10], text[10:]
    if rest and rest[0] not in " T":
        raise BadValue(field, value, NOT_A_DATE)
    # Split by hand: strptime costs more than the rest of mapping a record together.
    if len(head) == 10 and head[2] == "/" and head[5] == "/":
        parts = head[6:10], head[3:5], head[0:2]
    elif len(head) == 10 and head[4] == "-" and head[7] == "-":
        parts = head[0:4], head[5:7], head[8:10]
    else:
        raise BadValue(field, value, NOT_A_DATE)
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise BadValue(field, value, NOT_A_DATE)
    try:
        return date(*(int(p) for p in parts))
    except ValueError as exc:
        raise BadValue(field, value, NO_SUCH_DATE) from exc


# -- records ----------------------------------------------------------------------------
@dataclass
class MappedPage:
    """The rows of a page that can be stored, and one note per record set aside."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)
    #: The set-aside records in a few words each, e.g. "pedido 123, valor 'NaN'".
    named: list[str] = field(default_factory=list)

    def verification(self, listed: int | None = None) -> Verification:
        """What this page verified: listed (default: rows + set aside), stored, set aside."""
        return Verification(
            listed=len(self.rows) + len(self.set_aside) if listed is None else listed,
            stored=len(self.rows),
            set_aside=len(self.set_aside),
            set_aside_named=self.named[:SET_ASIDE_NAMED],
        )


def set_aside_note(kind: str, record_id: Any, exc: BadValue, *, what: str = "registro") -> str:
    """What people read about a set-aside record, e.g. "pedido 123: registro não gravado, …"."""
    try:
        ref = f"{kind} {parse_id(record_id)}"
    except BadValue:
        ref = f"{kind} sem id válido"
    return f"{ref}: {what} não gravado, {exc.field} {shown(exc.value)} {exc.reason}"


def set_aside_ref(kind: str, record_id: Any, exc: BadValue) -> str:
    """A set-aside record in a few words, e.g. "pedido 123, valor 'NaN'"."""
    try:
        ref = f"{kind} {parse_id(record_id)}"
    except BadValue:
        ref = f"{kind} sem id válido"
    return f"{ref}, {exc.field} {shown(exc.value)}"


def map_records(
    records: Iterable[dict[str, Any]], mapper: Callable[[dict[str, Any]], dict[str, Any]], kind: str
) -> MappedPage:
    """Map each record to a row with `mapper`; records it refuses (BadValue) are set aside."""
    page = MappedPage()
    for record in records:
        try:
            page.rows.append(mapper(record))
        except BadValue as exc:
            note = set_aside_note(kind, record.get("id"), exc)
            log.warning("%s", note)
            page.set_aside.append(note)
            page.named.append(set_aside_ref(kind, record.get("id"), exc))
    return page


LogLine = Callable[..., None]


def log_set_aside(log_line: LogLine, module: str, notes: list[str]) -> None:
    """Name set-aside records in the run's log, at most LOGGED_PER_PAGE per call."""
    for note in notes[:LOGGED_PER_PAGE]:
        log_line("warn", note, module=module)
    if len(notes) > LOGGED_PER_PAGE:
        log_line(
            "warn",
            f"e mais {len(notes) - LOGGED_PER_PAGE} registros não gravados nesta página",
            module=module,
        )
