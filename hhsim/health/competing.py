"""Choosing among competing exits with one uniform per tenant.

Exits with hazards h_1..h_K per year compete over a step of ``dt`` years: the chance of
leaving is p = 1 - exp(-sum(h) dt), and exit k takes the share h_k / sum(h) of it. A
tenant with uniform u < p leaves, by the exit whose slice of [0, p) holds u; where u falls
inside that slice is itself uniform, and gives the time of the exit within the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hhsim.health.rates import row_sums


@dataclass
class Exits:
    """Who leaves, by which exit (column), and when within the step (fraction in [0, 1))."""

    who: np.ndarray
    choice: np.ndarray
    when: np.ndarray


def choose_exits(h: np.ndarray, u: np.ndarray, dt: float, eligible: np.ndarray) -> Exits:
    """Exits for tenants with hazards ``h`` (n, K), uniforms ``u`` (n), over ``dt`` years.

    Only rows where ``eligible`` is true may leave. Columns with zero hazard for a row are
    never chosen for it.
    """
    total = row_sums(h)
    p_leave = -np.expm1(-total * np.float32(dt))
    who = np.flatnonzero((u < p_leave) & eligible)
    if not who.size:
        return Exits(who, np.empty(0, dtype=np.intp), np.empty(0))
    ul = u[who].astype(np.float64)
    hl = h[who].astype(np.float64)
    upper = np.cumsum(hl, axis=1) * (p_leave[who] / total[who])[:, None]
    rows = np.arange(who.size)
    choice = np.minimum((ul[:, None] >= upper).sum(axis=1), h.shape[1] - 1)
    # Round-off at the top of the range can land on a zero-hazard column: step back.
    bad = hl[rows, choice] <= 0
    while bad.any():
        choice[bad] -= 1
        bad = (hl[rows, choice] <= 0) & (choice > 0)
    lower = np.where(choice > 0, upper[rows, np.maximum(choice - 1, 0)], 0.0)
    width = upper[rows, choice] - lower
    with np.errstate(invalid="ignore", divide="ignore"):
        when = np.where(width > 0, (ul - lower) / width, 0.0)
    return Exits(who, choice, np.clip(when, 0.0, np.nextafter(1.0, 0.0)))
