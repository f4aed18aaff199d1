"""The calendar: the month of the year a step falls in.

A monthly model knows the calendar: step ``t`` of an experiment whose first step is calendar
month ``start_month`` (1 = January) falls in month ``(start_month - 1 + t) mod 12`` (0 =
January). Before each step the simulation sets it on the population (``set_month``), and
terms by calendar month (``rr.calendar_month``, ``hhsim.health.terms``) read it
(``month_of``). Where no month is set (a yearly cycle, the reference population of
de-averaging, a cohort run without a start month) a calendar term gives its annual mean.

Every step of a monthly model is a twelfth of a year long for rates (the days of the month
set only hospital days and the day of death), so the annual mean of a rate ratio by month
is the plain mean of its 12 values, and ratios whose mean is 1 keep the annual rate.

The month is kept on the population (``Population.calendar_month``) or on the profile grid
that stands for it (an attribute of the same name, read with a default of None).
"""

from __future__ import annotations

import numpy as np

MONTHS = 12
DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # January first; no leap years
#: Each month's share of a year of rates (January first): steps are a twelfth of a year each.
MONTH_WEIGHTS = np.full(12, 1 / 12)
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")
_ATTRIBUTE = "calendar_month"


def calendar_month(start_month: int, step: int) -> int:
    """Calendar month (0 = January) of step ``step`` of a monthly run whose first step is in
    ``start_month`` (1 = January)."""
    return (start_month - 1 + step) % MONTHS


def set_month(pop: object, month: int | None) -> None:
    """Tell ``pop`` (a population, or the profile grid) which calendar month (0 = January)
    the rates being evaluated are for; None: no month (calendar terms give annual means)."""
    setattr(pop, _ATTRIBUTE, month)


def month_of(pop: object) -> int | None:
    """The calendar month (0 = January) set on ``pop``, or None."""
    return getattr(pop, _ATTRIBUTE, None)


def annual_mean(values: np.ndarray) -> np.ndarray:
    """Mean over the 12 months (the last axis of ``values``) as a year of steps sees it."""
    return np.asarray(values, dtype=float) @ MONTH_WEIGHTS
