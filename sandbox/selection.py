"""A listing's record indices in listing order, computed by arithmetic where it can be."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator


class Selection:
    """The range [lo, hi) minus `removed`, with `inserted` records placed among it.

    `inserted` holds (anchor, index) pairs: each record sits just before the first kept index
    of the range that is >= anchor (anchors outside [lo, hi] go to the ends); records with the
    same anchor keep their given order. That is how an order added today but dated last week
    lands among last week's orders and shifts the pages after it, like in Tiny. Listing 200,000
    orders then costs a few arithmetic steps per page instead of a list.
    """

    def __init__(
        self,
        lo: int = 0,
        hi: int = 0,
        removed: Iterable[int] = (),
        inserted: Iterable[tuple[int, int]] = (),
    ) -> None:
        self.lo, self.hi = lo, max(lo, hi)
        self.removed = sorted({r for r in removed if lo <= r < self.hi})
        self._removed = set(self.removed)
        placed = sorted(
            (min(max(anchor, self.lo), self.hi), n, index)
            for n, (anchor, index) in enumerate(inserted)
        )
        self.inserted = [index for _, _, index in placed]
        self._inserted = set(self.inserted)
        # Position in the listing of each inserted record: strictly increasing.
        self._positions = [self._kept_before(a) + r for r, (a, _, _) in enumerate(placed)]
        self._list: list[int] | None = None
        self._members: set[int] | None = None

    @classmethod
    def of(cls, indices: Iterable[int]) -> Selection:
        """A selection holding exactly `indices`, in the given order."""
        selection = cls()
        selection._list = list(indices)
        return selection

    def _kept_before(self, anchor: int) -> int:
        """Kept range indices below `anchor`."""
        return (anchor - self.lo) - bisect.bisect_left(self.removed, anchor)

    def __len__(self) -> int:
        if self._list is not None:
            return len(self._list)
        return (self.hi - self.lo - len(self.removed)) + len(self.inserted)

    def __getitem__(self, k: int) -> int:
        if not 0 <= k < len(self):
            raise IndexError(k)
        if self._list is not None:
            return self._list[k]
        before = bisect.bisect_left(self._positions, k)
        if before < len(self._positions) and self._positions[before] == k:
            return self.inserted[before]
        x = self.lo + k - before
        for r in self.removed:  # skip each removed index at or before the candidate
            if r > x:
                break
            x += 1
        return x

    def __iter__(self) -> Iterator[int]:
        if self._list is not None:
            yield from self._list
            return
        pending = iter(zip(self._positions, self.inserted, strict=True))
        nxt = next(pending, None)
        k = 0
        for x in range(self.lo, self.hi):
            if x in self._removed:
                continue
            while nxt is not None and nxt[0] == k:
                yield nxt[1]
                k += 1
                nxt = next(pending, None)
            yield x
            k += 1
        while nxt is not None:
            yield nxt[1]
            nxt = next(pending, None)

    def __contains__(self, i: object) -> bool:
        if not isinstance(i, int):
            return False
        if self._list is not None:
            if self._members is None:
                self._members = set(self._list)
            return i in self._members
        return (self.lo <= i < self.hi and i not in self._removed) or i in self._inserted

    def filter(self, keep: Callable[[int], bool]) -> Selection:
        """The indices for which `keep` holds, in listing order."""
        return Selection.of(i for i in self if keep(i))
