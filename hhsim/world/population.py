"""The simulated world as a struct of arrays: tenants, and the dwellings they live in.

One array per attribute, one slot per tenant (or dwelling). Slots never move: a tenant who
dies keeps its slot with ``alive = False``, so slot ``i`` names the same person all run
(and receives the same random numbers in every arm). With tenancies that turn over
(``hhsim.world.tenancies``) the slots also hold the households still to arrive and those
who left, both with ``alive = False``: ``alive`` means living and a tenant now.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from hhsim.world.recent_use import RecentUse

#: Where a tenant lives. The last two are people experiencing homelessness (an optional
#: subpopulation: nobody is in them unless an experiment asks); their "dwelling" is a
#: placeholder without hazards. Codes are positions here: append, never reorder.
TENURES: tuple[str, ...] = ("owner_occupied", "private_rented", "social_rented",
                            "temporary_accommodation", "rough_sleeping")
HOMELESS: tuple[str, ...] = ("temporary_accommodation", "rough_sleeping")
HAZARDS: tuple[str, ...] = ("excess_cold", "damp", "falls")
HAZARD_BITS: dict[str, int] = {h: 1 << i for i, h in enumerate(HAZARDS)}
SEXES: tuple[str, ...] = ("male", "female")
#: Dwelling attributes that drive hazards (``hhsim.world.hazard_dynamics``): each an int8
#: code into its tuple of levels. Codes are positions: append, never reorder.
DWELLING_TYPES: tuple[str, ...] = ("house", "flat", "bungalow")
BUILD_PERIODS: tuple[str, ...] = ("pre_1919", "1919_1944", "1945_1980", "post_1980")
ENERGY_BANDS: tuple[str, ...] = ("A_C", "D", "E", "F_G")  # EPC energy efficiency rating bands
HEATING_TYPES: tuple[str, ...] = ("central", "other")
DWELLING_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "dwelling_type": DWELLING_TYPES, "build_period": BUILD_PERIODS,
    "energy_band": ENERGY_BANDS, "heating": HEATING_TYPES}
#: Fuel poverty (LILEE, England's official measure): low income and an energy band of D or worse.
FUEL_POOR_FROM_BAND = ENERGY_BANDS.index("D")
DECILES = 10  # IMD deciles: 1 = most deprived, 10 = least deprived

#: Where a tenant is. Providers add their own places (step-down unit, supported home).
HOME, ACUTE, DELAYED = 0, 1, 2
LOCATIONS: dict[str, int] = {"home": HOME, "acute": ACUTE, "delayed": DELAYED}
NO_DAY = np.iinfo(np.int32).max


@dataclass
class Dwellings:
    """Dwelling attributes (one slot per dwelling: the physical home).

    The attribute codes (``DWELLING_ATTRIBUTES``), ``low_income`` (the household's, for fuel
    poverty) and ``overcrowded`` (the household's: fewer bedrooms than the bedroom standard
    needs) default to code 0 and False (house, pre-1919, band A-C, central heating)
    where a population is built without them (a cohort's dwellings, which have no hazards).
    """

    tenure: np.ndarray  # int8 code into TENURES
    hazards: np.ndarray  # uint8 bit mask of HAZARD_BITS
    deprivation: np.ndarray  # int8 IMD decile of the area, 1..10
    estate: np.ndarray  # int32 estate id
    dwelling_type: np.ndarray = None  # type: ignore[assignment]  # int8 code into DWELLING_TYPES
    build_period: np.ndarray = None  # type: ignore[assignment]  # int8 code into BUILD_PERIODS
    energy_band: np.ndarray = None  # type: ignore[assignment]  # int8 code into ENERGY_BANDS
    heating: np.ndarray = None  # type: ignore[assignment]  # int8 code into HEATING_TYPES
    low_income: np.ndarray = None  # type: ignore[assignment]  # bool: the household's income is low
    overcrowded: np.ndarray = None  # type: ignore[assignment]  # bool: the household is overcrowded

    def __post_init__(self) -> None:
        for name in DWELLING_ATTRIBUTES:
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(self.n, dtype=np.int8))
        for flag in ("low_income", "overcrowded"):
            if getattr(self, flag) is None:
                setattr(self, flag, np.zeros(self.n, dtype=bool))

    @property
    def n(self) -> int:
        return int(self.tenure.size)

    @property
    def fuel_poor(self) -> np.ndarray:
        """Boolean per dwelling: its household is fuel poor (LILEE: low income, band D or worse)."""
        return self.low_income & (self.energy_band >= FUEL_POOR_FROM_BAND)


@dataclass
class Population:
    """Tenant attributes (one slot per tenant), the dwellings, and per-tenant state.

    Health-chain states live in ``states`` (one int8 array per chain of the health model);
    ``time_in_state`` holds months in the current state for chains whose rules use it,
    ``clocks`` the months on each of the health model's clocks (-1: not running), and
    ``attributes`` one value per tenant of each attribute of the model, drawn once.
    Dwelling attributes are copied to tenant arrays (``tenure``, ``deprivation``,
    ``hazards``) so rules read them without a gather; ``refresh_from_dwellings`` keeps the
    copies in step after repairs or moves.
    """

    age_months: np.ndarray  # int16, age in completed months
    female: np.ndarray  # bool
    alive: np.ndarray  # bool
    household: np.ndarray  # int32
    dwelling: np.ndarray  # int32 index into dwellings
    weight: np.ndarray  # float32, people represented by this tenant (1 unless scaled to a place)
    dwellings: Dwellings
    states: dict[str, np.ndarray] = field(default_factory=dict)
    time_in_state: dict[str, np.ndarray] = field(default_factory=dict)
    clocks: dict[str, np.ndarray] = field(default_factory=dict)  # int16 months (hhsim.health.clocks)
    wellbeing: np.ndarray | None = None  # float32 score
    wellbeing_trait: np.ndarray | None = None  # float32 personal offset
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # float32, drawn once each
    static_profile: np.ndarray | None = None  # see hhsim.health.profiles
    state_profile: np.ndarray | None = None
    recent_use: RecentUse | None = None  # rolling 12-month counts of service use
    tenure: np.ndarray = field(init=False)
    deprivation: np.ndarray = field(init=False)
    hazards: np.ndarray = field(init=False)
    age_years: np.ndarray = field(init=False)
    model_year: int = 0  # whole years since model start of the cycle being simulated or valued
    calendar_month: int | None = None  # 0 = January, of the step being simulated; None: annual means

    def __post_init__(self) -> None:
        self.refresh_from_dwellings()
        self.refresh_age()

    @property
    def n(self) -> int:
        return int(self.alive.size)

    def refresh_from_dwellings(self, idx: np.ndarray | None = None) -> None:
        """Copy dwelling attributes to tenants (all, or the tenants ``idx``)."""
        d = self.dwellings
        if idx is None:
            self.tenure = d.tenure[self.dwelling]
            self.deprivation = d.deprivation[self.dwelling]
            self.hazards = d.hazards[self.dwelling]
        else:
            where = self.dwelling[idx]
            self.tenure[idx] = d.tenure[where]
            self.deprivation[idx] = d.deprivation[where]
            self.hazards[idx] = d.hazards[where]

    def refresh_age(self) -> None:
        """Recompute whole years of age from months."""
        self.age_years = (self.age_months // 12).astype(np.int16)

    def has_hazard(self, hazard: str) -> np.ndarray:
        """Boolean array: tenant's dwelling has ``hazard``."""
        return (self.hazards & HAZARD_BITS[hazard]) != 0

    def extended(self, other: Population) -> Population:
        """This population with ``other``'s tenants and dwellings appended (slots and
        dwellings of ``other`` follow this one's; before health states are drawn)."""
        if self.states or other.states:
            raise ValueError("extend a population before its health states are drawn")
        nd = self.dwellings.n
        a, b = self.dwellings, other.dwellings
        # every attribute of the dwellings (estates renumbered to stay apart)
        dwellings = Dwellings(**{f.name: np.concatenate([getattr(a, f.name), getattr(b, f.name)])
                                 for f in fields(Dwellings) if f.name != "estate"},
                              estate=np.concatenate([a.estate, b.estate + (int(a.estate.max()) + 1)]))
        dwelling = np.concatenate([self.dwelling, other.dwelling + nd]).astype(np.int32)
        same = self.household is self.dwelling and other.household is other.dwelling
        household = dwelling if same else np.concatenate([self.household, other.household + nd])
        return Population(age_months=np.concatenate([self.age_months, other.age_months]),
                          female=np.concatenate([self.female, other.female]),
                          alive=np.concatenate([self.alive, other.alive]),
                          household=household.astype(np.int32), dwelling=dwelling,
                          weight=np.concatenate([self.weight, other.weight]), dwellings=dwellings)

    def take(self, idx: np.ndarray) -> Population:
        """A copy of the tenants ``idx`` (attributes, states, clocks; the same dwellings):
        for checks on part of a population."""
        def cut(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {k: v[idx] for k, v in d.items()}
        out = Population(age_months=self.age_months[idx], female=self.female[idx], alive=self.alive[idx],
                         household=self.household[idx], dwelling=self.dwelling[idx], weight=self.weight[idx],
                         dwellings=self.dwellings, states=cut(self.states),
                         time_in_state=cut(self.time_in_state), clocks=cut(self.clocks),
                         attributes=cut(self.attributes))
        for name in ("wellbeing", "wellbeing_trait", "static_profile", "state_profile"):
            value = getattr(self, name)
            setattr(out, name, None if value is None else value[idx])
        out.model_year = self.model_year
        return out

    def nbytes(self) -> int:
        """Bytes held by tenant and dwelling arrays."""
        total = 0
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                total += value.nbytes
            elif isinstance(value, dict):
                total += sum(a.nbytes for a in value.values())
            elif isinstance(value, RecentUse):
                total += value.nbytes()
        total += sum(a.nbytes for a in vars(self.dwellings).values())
        return total
