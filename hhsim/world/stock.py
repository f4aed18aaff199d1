"""A housing provider's own tenants and dwellings, read from a CSV file.

One row per adult tenant (16+). Required columns: ``age`` (years), ``tenure`` and
``imd_decile``. Optional columns give ids (tenant, dwelling, household, estate), sex, the
dwelling's hazards and attributes (``dwelling_type``, ``build_period``, ``energy_band`` or
``sap``, ``heating``), the household's ``low_income`` and ``overcrowded`` flags (yes or no),
a weight, and the state of any health chain. Absent optional columns, and blank cells in
present ones, are filled as ``hhsim.world.synthetic`` fills them: sex with the tenure's
female share, hazards per dwelling with the tenure's prevalence (redrawn at the start of a
run from each dwelling's stationary chance, ``hhsim.world.hazard_dynamics``; given hazards
are kept), attributes with the tenure's shares, estates in blocks of ``world.estate_size``
dwellings of one tenure and decile. Chain states left out are drawn later by the health
model. The format is described in ``docs/own-data.md``.

Every cell is checked before anything is built, and every problem is reported in one error:
a file is loaded whole or not at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hhsim.core.errors import HhsimError
from hhsim.core.parameters import scalar
from hhsim.world.csvfile import Problems, data_rows, header, read_rows
from hhsim.world.population import (
    BUILD_PERIODS,
    DECILES,
    DWELLING_ATTRIBUTES,
    DWELLING_TYPES,
    ENERGY_BANDS,
    HAZARD_BITS,
    HAZARDS,
    HEATING_TYPES,
    TENURES,
    Dwellings,
    Population,
)
from hhsim.world.synthetic import draw_dwelling_attributes, estate_size

MIN_AGE, MAX_AGE = 16, 120  # years
REQUIRED = ("age", "tenure", "imd_decile")
TENURE_CODES: dict[str, int] = {
    **{t: i for i, t in enumerate(TENURES)},
    "owner": 0, "owned": 0, "owner_occupier": 0,
    "private": 1, "privately_rented": 1, "private_rent": 1,
    "social": 2, "social_rent": 2, "council": 2, "housing_association": 2,
    "temporary": 3, "ta": 3, "temporary_accommodation": 3,
    "rough_sleeper": 4, "rough_sleeping": 4, "street_homeless": 4,
}
YES_NO: dict[str, int] = {"1": 1, "yes": 1, "y": 1, "true": 1, "0": 0, "no": 0, "n": 0, "false": 0}
SEX: dict[str, int] = {"f": 1, "female": 1, "m": 0, "male": 0}
DWELLING_TYPE_CODES: dict[str, int] = {
    **{t: i for i, t in enumerate(DWELLING_TYPES)}, "houses": 0, "terraced": 0, "semi_detached": 0,
    "detached": 0, "maisonette": 1, "apartment": 1}
BUILD_PERIOD_CODES: dict[str, int] = {
    **{t: i for i, t in enumerate(BUILD_PERIODS)}, "pre1919": 0, "before_1919": 0, "1919_44": 1,
    "1945_80": 2, "after_1980": 3, "post1980": 3}
#: EPC letters A..G to the model's bands (A-C together, F-G together).
ENERGY_BAND_CODES: dict[str, int] = {
    **{t.lower(): i for i, t in enumerate(ENERGY_BANDS)}, "a": 0, "b": 0, "c": 0, "d": 1, "e": 2, "f": 3,
    "g": 3}
HEATING_CODES: dict[str, int] = {
    **{t: i for i, t in enumerate(HEATING_TYPES)}, "central_heating": 0, "gas_central": 0, "none": 1,
    "no_central_heating": 1, "storage_heaters": 1, "room_heaters": 1}
#: SAP ratings below which a home is in band D, E and F-G (EPC bands: A 92+, B 81-91,
#: C 69-80, D 55-68, E 39-54, F 21-38, G 1-20), for a ``sap`` column.
SAP_BAND_CEILINGS = (69, 55, 39)


@dataclass
class StockReport:
    """What was read from a stock file, and how absent or blank values were filled."""

    rows: int  # tenants read
    dwellings: int
    filled: dict[str, str]  # column -> how it was filled
    given_states: list[str]  # chains whose states came from the file
    tenant_ids: list[str]  # the file's tenant id of each slot (its line number where not given)
    hazards_given: np.ndarray  # uint8 per dwelling: bits of the hazards the file gave (yes or no)


class _Bad(ValueError):
    """A cell holds a value that is not allowed; the message says why."""


# -- cell values ---------------------------------------------------------------------------
def _number(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise _Bad(f"'{text}' is not a number")
    return x


def _age(text: str) -> float:
    x = _number(text)
    if not MIN_AGE <= x <= MAX_AGE:
        raise _Bad(f"'{text}' is outside {MIN_AGE} to {MAX_AGE}")
    return x


def _decile(text: str) -> int:
    x = _number(text)
    if not (x.is_integer() and 1 <= x <= DECILES):
        raise _Bad(f"'{text}' is not a whole number from 1 to {DECILES}")
    return int(x)


def _weight(text: str) -> float:
    x = _number(text)
    if x <= 0:
        raise _Bad(f"'{text}' is not above 0")
    return x


def _tenure(text: str) -> int:
    code = TENURE_CODES.get(re.sub(r"[\s_-]+", "_", text.lower()))
    if code is None:
        raise _Bad(f"'{text}' is not a tenure")
    return code


def _choice(table: Mapping[str, int], what: str) -> Callable[[str], int]:
    def convert(text: str) -> int:
        code = table.get(text.lower())
        if code is None:
            raise _Bad(f"'{text}' is not {what}")
        return code
    return convert


def _label(table: Mapping[str, int], what: str) -> Callable[[str], int]:
    """A converter for words such as 'semi-detached' or 'F-G' (spaces and hyphens as '_')."""
    choose = _choice(table, what)
    return lambda text: choose(re.sub(r"[\s-]+", "_", text))


def _sap(text: str) -> int:
    """The model's energy band of a SAP rating (1 to 100)."""
    x = _number(text)
    if not 1 <= x <= 100:
        raise _Bad(f"'{text}' is outside 1 to 100")
    return sum(x < ceiling for ceiling in SAP_BAND_CEILINGS)


def _chain_column(chain: str, states: Sequence[str]) -> tuple[Callable[[str], int], str]:
    table = {s.lower(): i for i, s in enumerate(states)}
    fix = f"give one of: {', '.join(states)}"
    if len(states) == 2:
        table = {**YES_NO, **table}  # 1/yes means the second state; state names win
        fix += " (or 1/0, yes/no)"
    return _choice(table, f"a state of {chain}"), fix + ", or leave it blank"


def _columns(chains: Mapping[str, Sequence[str]]) -> dict[str, tuple[Callable[[str], Any], str]]:
    """Every known column: its converter (stripped text -> value) and the fix for a bad value."""
    yes_no = (_choice(YES_NO, "yes or no"), "give 1/0, yes/no, true/false or y/n, or leave it blank")
    columns: dict[str, tuple[Callable[[str], Any], str]] = {
        "tenant_id": (str, "give each tenant a different id"),
        "age": (_age, f"give the age in years, {MIN_AGE} to {MAX_AGE}"),
        "tenure": (_tenure, f"give one of: {', '.join(TENURES)}; or owner, private, social, council, "
                            "housing association"),
        "imd_decile": (_decile, "give the IMD 2019 decile of the area, 1 (most deprived) to 10"),
        "dwelling_id": (str, "give the same dwelling_id to tenants who share a home"),
        "household_id": (str, "give the same household_id to tenants of one household"),
        "estate_id": (str, "give the same estate_id to dwellings of one estate"),
        "sex": (_choice(SEX, "F, M, female or male"), "give F, M, female or male, or leave it blank"),
        **{h: yes_no for h in HAZARDS},
        "dwelling_type": (_label(DWELLING_TYPE_CODES, "a dwelling type"),
                          f"give one of: {', '.join(DWELLING_TYPES)}, or leave it blank"),
        "build_period": (_label(BUILD_PERIOD_CODES, "a build period"),
                         f"give one of: {', '.join(BUILD_PERIODS)}, or leave it blank"),
        "energy_band": (_label(ENERGY_BAND_CODES, "an EPC band"),
                        "give the EPC energy efficiency band, A to G, or leave it blank"),
        "sap": (_sap, "give the SAP energy efficiency rating, 1 to 100, or leave it blank"),
        "heating": (_label(HEATING_CODES, "a heating type"),
                    f"give one of: {', '.join(HEATING_TYPES)}, or leave it blank"),
        "low_income": yes_no,
        "overcrowded": yes_no,
        "weight": (_weight, "give the number of people the tenant stands for, above 0"),
    }
    columns.update({c.lower(): _chain_column(c, s) for c, s in chains.items()})
    return columns


def _parse(cells: Sequence[str], column: str, convert: Callable[[str], Any], fix: str,
           lines: Sequence[int], problems: Problems) -> list[Any]:
    """Converted cells, None where blank; a problem for each bad or (if required) blank cell."""
    table: dict[str, Any] = {}
    bad: dict[str, str] = {}
    for raw in set(cells):
        text = raw.strip()
        table[raw] = None
        if not text:
            if column in REQUIRED:
                bad[raw] = "the cell is blank"
            continue
        try:
            table[raw] = convert(text)
        except _Bad as exc:
            bad[raw] = str(exc)
    if bad:
        for line, raw in zip(lines, cells, strict=True):
            if raw in bad:
                problems.add(line, column, bad[raw], fix)
    return [table[raw] for raw in cells]


def _codes(values: Sequence[Any]) -> np.ndarray:
    """Integer codes with -1 where blank."""
    return np.array([-1 if v is None else v for v in values], dtype=np.int64)


def _index(keys: Sequence[Any]) -> np.ndarray:
    """Each key's number, in order of first appearance; -1 for None."""
    seen: dict[Any, int] = {}
    return np.array([-1 if k is None else seen.setdefault(k, len(seen)) for k in keys], dtype=np.int64)


def _agree(values: Sequence[Any], cells: Sequence[str], dwelling: Sequence[int], dwelling_ids: Sequence[Any],
           column: str, lines: Sequence[int], problems: Problems) -> None:
    """A problem for each tenant whose (given) value differs from another of its dwelling."""
    first: dict[int, int] = {}
    for k, (d, v) in enumerate(zip(dwelling, values, strict=True)):
        if v is None:
            continue
        j = first.setdefault(d, k)
        if values[j] != v:
            problems.add(lines[k], column, f"'{cells[k].strip()}' disagrees with line {lines[j]} "
                         f"('{cells[j].strip()}') in dwelling '{dwelling_ids[k]}'",
                         f"give every tenant of a dwelling the same {column} value")


def _households(ids: Sequence[str | None], dwelling: Sequence[int], lines: Sequence[int],
                problems: Problems) -> np.ndarray:
    """Household number of each tenant (blank: its dwelling's household); one dwelling each."""
    home: dict[str, int] = {}
    for k, (h, d) in enumerate(zip(ids, dwelling, strict=True)):
        if h is not None and dwelling[j := home.setdefault(h, k)] != d:
            problems.add(lines[k], "household_id", f"household '{h}' is also in another dwelling "
                         f"(line {lines[j]})", "give the tenants of one household the same dwelling_id")
    return _index([(d,) if h is None else h for h, d in zip(ids, dwelling, strict=True)])


# -- filling ----------------------------------------------------------------------------------
def _world_value(world: Mapping[str, Any], name: str) -> float:
    """The single number at dotted ``name`` of the world parameters."""
    parent, key = name.rsplit(".", 1)
    node: Any = world
    for part in parent.split("."):
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return scalar(node, key, parent)


def _by_tenure(world: Mapping[str, Any], section: str) -> np.ndarray:
    return np.array([_world_value(world, f"{section}.{t}") for t in TENURES])


def _estates(given: np.ndarray, tenure: np.ndarray, decile: np.ndarray, size: int) -> np.ndarray:
    """Estate of each dwelling: given numbers kept, the rest in blocks of ``size`` per tenure and decile."""
    estate = given.copy()
    next_id = int(given.max()) + 1
    for t in range(len(TENURES)):
        for dec in range(1, DECILES + 1):
            idx = np.flatnonzero((given < 0) & (tenure == t) & (decile == dec))
            estate[idx] = next_id + np.arange(idx.size) // size
            next_id += -(-idx.size // size)
    return estate


@dataclass
class _Checked:
    """A file whose every cell has passed its checks, with tenants' dwellings and households numbered."""

    values: dict[str, list[Any]]  # present column -> converted cells, None where blank
    dwelling: np.ndarray  # dwelling number of each tenant, in order of first appearance
    household: np.ndarray
    tenant_ids: list[str]

    @property
    def n(self) -> int:
        return int(self.dwelling.size)

    def column(self, name: str) -> list[Any]:
        """Converted cells of a column (all None when the column is absent)."""
        return self.values.get(name, [None] * self.n)

    def blanks(self, name: str) -> int:
        return sum(v is None for v in self.column(name))


def _check(path: Path, chains: Mapping[str, Sequence[str]]) -> _Checked:
    """Read and check a stock file; raise one HhsimError listing every problem."""
    spec = _columns(chains)
    known = [*REQUIRED, *(c for c in spec if c not in REQUIRED)]
    raw_rows, raw_lines = read_rows(path, "stock file", "adult tenant")
    problems = Problems(path, {name.strip().lower(): pos for pos, name in enumerate(raw_rows[0])})
    where = header(raw_rows, raw_lines[0], known, REQUIRED, problems)
    rows, lines = data_rows(raw_rows, raw_lines, problems)
    columns = list(zip(*rows, strict=True)) or [()] * len(raw_rows[0])
    raw = {name: columns[pos] for name, pos in where.items()}
    got = {name: _parse(raw[name], name, *spec[name], lines, problems) for name in where}
    absent = [None] * len(rows)

    dwelling_ids = got.get("dwelling_id", absent)
    dwelling = _index([(line,) if d is None else d for d, line in zip(dwelling_ids, lines, strict=True)])
    dw_list = dwelling.tolist()
    if "dwelling_id" in got:
        shown = [f"line {line}" if d is None else d for d, line in zip(dwelling_ids, lines, strict=True)]
        for column in ("tenure", "imd_decile", *HAZARDS, *DWELLING_ATTRIBUTES, "sap", "low_income",
                       "overcrowded", "estate_id"):
            if column in got:
                _agree(got[column], raw[column], dw_list, shown, column, lines, problems)
    household = dwelling
    if "household_id" in got:
        household = _households(got["household_id"], dw_list, lines, problems)
    tenant_ids = [str(line) if t is None else t
                  for t, line in zip(got.get("tenant_id", absent), lines, strict=True)]
    if "tenant_id" in got:
        seen: dict[str, int] = {}
        for t, line in zip(tenant_ids, lines, strict=True):
            if (j := seen.setdefault(t, line)) != line:
                problems.add(line, "tenant_id", f"'{t}' is also on line {j}",
                             "give each tenant a different id")
    problems.raise_if_any()
    return _Checked(got, dwelling, household, tenant_ids)


def check_hazards_can_vary(pop: Population, hazards_given: np.ndarray) -> None:
    """Refuse a stock whose given cells put a hazard in every given dwelling of a tenure:
    hazards come and go around the file's prevalence among the dwellings given, and 100%
    cannot (``hhsim.world.hazard_dynamics``). Checked when the plan is compiled and when a
    run starts."""
    d = pop.dwellings
    for h in HAZARDS:
        bit = np.uint8(HAZARD_BITS[h])
        known = (hazards_given & bit) != 0
        for t in np.unique(d.tenure[known]):
            if ((d.hazards[known & (d.tenure == t)] & bit) != 0).all():
                raise HhsimError(f"stock file, column {h}", f"every {TENURES[t]} dwelling given has "
                                 "the hazard, so it cannot come and go", "give some 'no' cells")


def load_stock(path: str | Path, world: Mapping[str, Any], chains: Mapping[str, tuple[str, ...]],
               rng: np.random.Generator) -> tuple[Population, dict[str, np.ndarray], StockReport]:
    """Read a provider's tenants and dwellings. Returns the Population (health states NOT set),
    the chain states given in the file as {chain: int8 array with -1 where not given}, and a report.

    ``world`` is the world parameter tree (with its top-level ``world`` table); ``chains``
    maps each health chain to its state names. Fills use ``rng`` only, after the whole file
    has passed its checks: one uniform per tenant (sex), then three per dwelling (hazards),
    then five per dwelling (attributes and low income).
    """
    stock = _check(Path(path), chains)
    n, dwelling = stock.n, stock.dwelling
    n_dw = int(dwelling.max()) + 1
    first_row = np.unique(dwelling, return_index=True)[1]
    tenure = np.array(stock.column("tenure"), dtype=np.int8)
    tenure_dw = tenure[first_row]
    decile_dw = np.array(stock.column("imd_decile"), dtype=np.int8)[first_row]
    u_sex = rng.random(n)
    u_hazard = rng.random((n_dw, len(HAZARDS)))
    filled: dict[str, str] = {}

    def per_dwelling(column: str) -> np.ndarray:
        """The dwelling's code in ``column`` (any tenant's: they agree), -1 where none is given."""
        codes = _index(stock.column(column)) if column == "estate_id" else _codes(stock.column(column))
        out = np.full(n_dw, -1, dtype=np.int64)
        out[dwelling[codes >= 0]] = codes[codes >= 0]
        return out

    def note(column: str, missing: int, unit: str, how: str) -> None:
        total = n_dw if unit == "dwellings" else n
        if column not in stock.values:
            filled[column] = f"column absent, for all {total} {unit}: {how}"
        elif missing:
            filled[column] = f"blank for {missing} of {total} {unit}: {how}"

    sex = _codes(stock.column("sex"))
    female = np.where(sex >= 0, sex == 1, u_sex < _by_tenure(world, "world.female")[tenure])
    note("sex", stock.blanks("sex"), "tenants",
         "drawn with the tenure's female share (world.female.<tenure>)")
    hazards = np.zeros(n_dw, dtype=np.uint8)
    for j, h in enumerate(HAZARDS):
        given = per_dwelling(h)
        drawn = u_hazard[:, j] < _by_tenure(world, f"world.hazards.{h}")[tenure_dw]
        hazards |= np.where(np.where(given >= 0, given == 1, drawn), HAZARD_BITS[h], 0).astype(np.uint8)
        note(h, int((given < 0).sum()), "dwellings",
             f"drawn with the tenure's prevalence (world.hazards.{h}.<tenure>)")
    hazards_given = np.zeros(n_dw, dtype=np.uint8)
    for h in HAZARDS:
        hazards_given |= np.where(per_dwelling(h) >= 0, HAZARD_BITS[h], 0).astype(np.uint8)
    given_attributes = {name: per_dwelling(name)
                        for name in (*DWELLING_ATTRIBUTES, "low_income", "overcrowded")}
    band, sap = given_attributes["energy_band"], per_dwelling("sap")
    given_attributes["energy_band"] = np.where(band >= 0, band, sap)
    attributes = draw_dwelling_attributes(tenure_dw, world, rng, given_attributes)
    for name, code in given_attributes.items():
        how = {"low_income": "drawn so that the tenure's share in fuel poverty is "
                             "world.fuel_poverty.<tenure>",
               "overcrowded": "drawn with the tenure's share (world.overcrowding.<tenure>)"}.get(
                   name, "drawn with the tenure's shares (world.dwelling.{name}.<tenure>)")
        if name == "energy_band" and "sap" in stock.values and "energy_band" not in stock.values:
            name = "sap"
        note(name, int((code < 0).sum()), "dwellings", how.format(name=name))
    size = estate_size(world)
    given_estate = per_dwelling("estate_id")
    note("estate_id", int((given_estate < 0).sum()), "dwellings",
         f"grouped by tenure and decile into estates of world.estate_size = {size} dwellings")
    note("tenant_id", stock.blanks("tenant_id"), "tenants", "the line number")
    note("dwelling_id", stock.blanks("dwelling_id"), "tenants", "each tenant its own dwelling")
    note("household_id", stock.blanks("household_id"), "tenants", "one household per dwelling")
    note("weight", stock.blanks("weight"), "tenants", "1")

    states: dict[str, np.ndarray] = {}
    for chain in chains:
        codes = _codes(stock.column(chain.lower())).astype(np.int8)
        if (codes >= 0).any():
            states[chain] = codes
        note(chain.lower(), int((codes < 0).sum()), "tenants", "drawn by the health model")

    pop = Population(
        age_months=np.floor(np.array(stock.column("age"), dtype=np.float64) * 12).astype(np.int16),
        female=female,
        alive=np.ones(n, dtype=bool),
        household=stock.household.astype(np.int32),
        dwelling=dwelling.astype(np.int32),
        weight=np.array([1.0 if w is None else w for w in stock.column("weight")], dtype=np.float32),
        dwellings=Dwellings(tenure=tenure_dw, hazards=hazards, deprivation=decile_dw,
                            estate=_estates(given_estate, tenure_dw, decile_dw, size).astype(np.int32),
                            **attributes),
    )
    report = StockReport(rows=n, dwellings=n_dw, filled=filled, given_states=list(states),
                         tenant_ids=stock.tenant_ids, hazards_given=hazards_given)
    return pop, states, report
