"""Small shared helpers: Brasília time, Tiny's date formats, money and stable hashing."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

T = TypeVar("T")

# Brazil dropped daylight saving in 2019, so a fixed UTC-3 offset is Brasília time.
BRT = timezone(timedelta(hours=-3), "BRT")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_DAY = 86_400_000_000
CENT = Decimal("0.01")

_M64 = (1 << 64) - 1


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("the sandbox clock must return an aware datetime")
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    """Aware Brasília datetime of an epoch-microseconds value."""
    return (EPOCH + timedelta(microseconds=us)).astimezone(BRT)


def date_of(us: int) -> date:
    """Brasília calendar date of an epoch-microseconds value."""
    return from_us(us).date()


def midnight_us(day: date) -> int:
    """Epoch microseconds of midnight, Brasília time, at the start of `day`."""
    return to_us(datetime(day.year, day.month, day.day, tzinfo=BRT))


def fmt_date(day: date | None) -> str:
    """Tiny's dd/mm/yyyy (empty text for no date, as Tiny does)."""
    return day.strftime("%d/%m/%Y") if day else ""


def fmt_datetime(us: int) -> str:
    """Tiny's dd/mm/yyyy hh:mm:ss in Brasília time."""
    return from_us(us).strftime("%d/%m/%Y %H:%M:%S")


def parse_date(text: str) -> date:
    """Parse dd/mm/yyyy; raises ValueError on anything else."""
    return datetime.strptime(text.strip(), "%d/%m/%Y").date()


def parse_datetime_us(text: str) -> int:
    """Parse 'dd/mm/yyyy hh:mm:ss' (or just the date) as Brasília time, to epoch microseconds."""
    text = text.strip()
    for pattern in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"):
        try:
            naive = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return to_us(naive.replace(tzinfo=BRT))
    raise ValueError(f"invalid date/time: {text!r}")


def money(value: Decimal | float | int | str) -> Decimal:
    """Round to cents the way an ERP does (half up)."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def fmt_money(value: Decimal) -> str:
    """Money as Tiny sends it: a decimal string with two places."""
    return f"{value:.2f}"


def fold(text: str) -> str:
    """Lower-case, accent-free text for Tiny-like forgiving text matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def stable_seed(token: str) -> int:
    """A seed from a token that is the same in every process (unlike hash())."""
    return int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big")


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def mix(*parts: int) -> int:
    """Fast deterministic 64-bit hash of integers; per-record fields derive from it."""
    x = 0
    for part in parts:
        x = _splitmix(x ^ (part & _M64))
    return x


def mix_more(prefix: int, part: int) -> int:
    """mix(*parts, part) given prefix == mix(*parts): one round instead of len(parts) + 1."""
    return _splitmix(prefix ^ (part & _M64))


def unit(value: int) -> float:
    """Map a 64-bit hash to [0, 1)."""
    return (value >> 11) / float(1 << 53)


class Rng:
    """A small splitmix64 generator: per-record streams seeded in O(1), unlike random.Random.

    Modulo bias is far below anything a test or a report could notice.
    """

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _M64

    def bits(self) -> int:
        """The next 64 random bits."""
        self._state = (self._state + 0x9E3779B97F4A7C15) & _M64
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return z ^ (z >> 31)

    def random(self) -> float:
        """Uniform in [0, 1)."""
        return (self.bits() >> 11) / 9007199254740992.0

    def uniform(self, low: float, high: float) -> float:
        """Uniform in [low, high)."""
        return low + (high - low) * self.random()

    def randrange(self, start: int, stop: int | None = None) -> int:
        """An integer in [start, stop) (or [0, start))."""
        if stop is None:
            start, stop = 0, start
        return start + self.bits() % (stop - start)

    def randint(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return low + self.bits() % (high - low + 1)

    def choice(self, seq: Sequence[T]) -> T:
        """One element of a non-empty sequence."""
        return seq[self.bits() % len(seq)]

    def sample(self, population: int, k: int) -> list[int]:
        """k distinct integers from range(population) (k <= population)."""
        picked: list[int] = []
        while len(picked) < k:
            x = self.bits() % population
            if x not in picked:
                picked.append(x)
        return picked
