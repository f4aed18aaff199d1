"""Service use in the last 12 months, per tenant: what a provider or GP could observe.

Targeting rules (a risk score from recent service use) and pilot-style enrolment (after a
spell of high use) read these counts; the model's hidden rates are never exposed to them.
Each tracked service keeps one count per month for the last 12 months, as 4-bit values
(capped at 15 a month), two months to a byte: 6 bytes per tenant per service. The cap only
affects this observable signal; costs use the full counts.
"""

from __future__ import annotations

import numpy as np

MONTHS = 12
CAP = 15


class RecentUse:
    """Rolling 12-month counts of some services' use, for every tenant slot."""

    def __init__(self, n: int, services: list[str]) -> None:
        self.packed = {s: np.zeros((MONTHS // 2, n), dtype=np.uint8) for s in services}

    @property
    def services(self) -> list[str]:
        return list(self.packed)

    def record(self, service: str, month: int, counts: np.ndarray) -> None:
        """Store the counts of calendar slot ``month`` (model month), replacing the slot's
        value from 12 months before."""
        slot = month % MONTHS
        row = self.packed[service][slot // 2]
        shift = np.uint8(4 * (slot % 2))
        keep = np.uint8(0x0F << (4 - int(shift)))  # the other month's nibble
        row &= keep
        row |= np.minimum(counts, CAP).astype(np.uint8) << shift

    def total(self, service: str, idx: np.ndarray | None = None) -> np.ndarray:
        """Use in the last 12 months (the current month included once recorded)."""
        packed = self.packed[service] if idx is None else self.packed[service][:, idx]
        low = (packed & np.uint8(0x0F)).sum(axis=0, dtype=np.uint16)
        high = (packed >> np.uint8(4)).sum(axis=0, dtype=np.uint16)
        return low + high

    def last(self, service: str, months: int, now: int, idx: np.ndarray | None = None) -> np.ndarray:
        """Use in the ``months`` months before model month ``now`` (months ``now - months``
        to ``now - 1``; months before the start count as 0)."""
        if not 1 <= months <= MONTHS:
            raise ValueError(f"months must be 1 to {MONTHS}")
        packed = self.packed[service] if idx is None else self.packed[service][:, idx]
        out = np.zeros(packed.shape[1], dtype=np.uint16)
        for month in range(max(now - months, 0), now):
            slot = month % MONTHS
            out += (packed[slot // 2] >> np.uint8(4 * (slot % 2))) & np.uint8(0x0F)
        return out

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.packed.values())
