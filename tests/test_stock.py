"""A provider's own stock from CSV: columns map to arrays, gaps are filled, bad files are refused whole."""

import csv
from pathlib import Path

import numpy as np
import pytest

from hhsim.core.errors import HhsimError
from hhsim.core.resources import default_model_tree, world_tree
from hhsim.world.population import HAZARD_BITS, TENURES
from hhsim.world.stock import load_stock

from conftest import ROOT

EXAMPLE = ROOT / "experiments" / "example-stock.csv"
CHAINS = {name: tuple(c["states"]) for name, c in default_model_tree()["chains"].items()}
SOCIAL = TENURES.index("social_rented")
COLD, DAMP, FALLS = HAZARD_BITS["excess_cold"], HAZARD_BITS["damp"], HAZARD_BITS["falls"]


def write(tmp_path: Path, text: str, name: str = "stock.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, seed: int = 0):
    return load_stock(path, world_tree(), CHAINS, np.random.default_rng(seed))


def problems(path: Path) -> str:
    """The error message for a bad file (and proof that nothing was returned): one line."""
    return error(path)[0]


def error(path: Path) -> tuple[str, tuple[str, ...]]:
    """The one-line error message for a bad file, and every problem it lists in full."""
    with pytest.raises(HhsimError) as err:
        load(path)
    message = str(err.value)
    assert "\n" not in message
    return message, err.value.details


def big_file(tmp_path: Path, n_dwellings: int, adults: int = 2, **cells: str) -> Path:
    """A file of shared dwellings, every cell of the optional columns ``cells`` as given."""
    extra = list(cells)
    lines = [",".join(["dwelling_id", "age", "tenure", "imd_decile", *extra])]
    for d in range(n_dwellings):
        lines += [",".join([f"D{d}", str(30 + d % 50), "social_rented", str(1 + d % 10), *cells.values()])
                  ] * adults
    return write(tmp_path, "\n".join(lines) + "\n")


# -- reading -----------------------------------------------------------------------------------
def test_example_file_loads():
    with EXAMPLE.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    pop, states, report = load(EXAMPLE)
    assert report.rows == pop.n == len(rows) >= 250
    assert report.dwellings == pop.dwellings.n == len({r["dwelling_id"] for r in rows})
    assert report.given_states == ["ltc"] and list(states) == ["ltc"]
    assert report.tenant_ids == [r["tenant_id"] for r in rows]
    assert np.array_equal(pop.age_years, [int(r["age"]) for r in rows])
    assert np.all(pop.weight == 1.0) and pop.alive.all() and pop.states == {}
    assert "estate_id" in report.filled and "sex" in report.filled  # the example has blanks
    named = {r["estate_id"] for r in rows if r["estate_id"]}
    assert np.unique(pop.dwellings.estate).size > len(named)  # street properties in blocks


def test_columns_map_to_population_arrays(tmp_path):
    path = write(tmp_path, (
        " Tenant_ID ,dwelling_id,household_id,estate_id,AGE,sex,tenure,imd_decile,excess_cold,damp,falls,"
        "weight,ltc,health,mental_health\n"
        "a1,D1,H1,North,34,F,social,1,yes,no,0,2.5,ltc,good,\n"
        "a2,D1,H1,North,36.5,m,Social_Rented,1,yes,no,0,,,fair,no\n"
        "a3,D2,H2,South,80,Male,Council,3,n,Y,TRUE,1,none,,1\n"
        "a4,D3,,,45,female,owner,10,false,1,no,1,0,bad,\n"
        "a5,D4,H5,South,16,f,Housing Association,3,0,0,1,1,1,fair,cmd\n"
        "a6,D5,H6,,120,F,private,5,0,0,0,1,yes,bad,well\n"
    ))
    pop, states, report = load(path)
    assert report.rows == 6 and report.dwellings == 5
    assert report.tenant_ids == ["a1", "a2", "a3", "a4", "a5", "a6"]
    assert pop.age_months.tolist() == [408, 438, 960, 540, 192, 1440]
    assert pop.age_months.dtype == np.int16
    assert pop.female.tolist() == [True, False, False, True, True, True]
    assert pop.dwelling.tolist() == [0, 0, 1, 2, 3, 4]
    assert pop.household.tolist() == [0, 0, 1, 2, 3, 4]
    assert pop.tenure.tolist() == [SOCIAL, SOCIAL, SOCIAL, 0, SOCIAL, 1]
    assert pop.dwellings.tenure.dtype == np.int8
    assert pop.dwellings.deprivation.tolist() == [1, 3, 10, 3, 5]
    assert pop.dwellings.hazards.tolist() == [COLD, DAMP | FALLS, DAMP, FALLS, 0]
    assert pop.dwellings.hazards.dtype == np.uint8
    assert pop.dwellings.estate[0] != pop.dwellings.estate[1] == pop.dwellings.estate[3]
    assert np.allclose(pop.weight, [2.5, 1, 1, 1, 1, 1])
    assert states["ltc"].tolist() == [1, -1, 0, 0, 1, 1]
    assert states["health"].tolist() == [0, 1, -1, 2, 1, 2]
    assert states["mental_health"].tolist() == [-1, 0, 1, -1, 1, 0]
    assert all(a.dtype == np.int8 for a in states.values())
    assert report.given_states == ["ltc", "mental_health", "health"]  # model order
    assert report.filled["weight"].startswith("blank for 1 of 6 tenants")
    assert report.filled["care_need"].startswith("column absent")
    assert "sex" not in report.filled and "damp" not in report.filled


def test_only_required_columns_gives_each_tenant_a_dwelling_and_household(tmp_path):
    pop, states, report = load(write(tmp_path, "age,tenure,imd_decile\n40,social,2\n50,social,2\n"))
    assert pop.dwelling.tolist() == [0, 1] and pop.household.tolist() == [0, 1]
    assert report.tenant_ids == ["2", "3"]  # line numbers
    assert states == {} and report.given_states == []
    for column in ("tenant_id", "dwelling_id", "household_id", "estate_id", "sex", "damp", "weight", "ltc"):
        assert report.filled[column].startswith("column absent"), column


def test_bom_crlf_blank_lines_and_quoted_cells_are_read(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b'\xef\xbb\xbfage,tenure,imd_decile,dwelling_id\r\n\r\n40,social,2,"Flat 1, Mill St"\r\n'
                     b',,,\r\n41,social,2,"Flat 1, Mill St"\r\n')
    pop, _, report = load(path)
    assert report.rows == 2 and report.dwellings == 1 and pop.age_years.tolist() == [40, 41]
    assert report.tenant_ids == ["3", "5"]  # physical lines, blank ones counted


# -- dwellings -----------------------------------------------------------------------------------
def test_tenants_of_a_dwelling_share_its_attributes(tmp_path):
    pop, _, report = load(big_file(tmp_path, 3000, adults=3))  # hazards, sex and estates drawn
    assert report.dwellings == 3000 and pop.n == 9000
    for attr in ("tenure", "deprivation", "hazards"):
        shared = getattr(pop, attr).reshape(3000, 3)
        assert (shared == shared[:, :1]).all(), attr
    assert np.array_equal(pop.household, pop.dwelling)
    assert (pop.hazards != 0).any()


def test_a_blank_hazard_cell_takes_the_value_given_for_its_dwelling(tmp_path):
    path = write(tmp_path, "dwelling_id,age,tenure,imd_decile,damp\nD1,40,social,2,\nD1,41,social,2,yes\n"
                           "D1,42,social,2,\n")
    for seed in range(5):
        pop, _, report = load(path, seed)
        assert pop.has_hazard("damp").all()
    assert "damp" not in report.filled  # the dwelling's value was given


# -- filling ---------------------------------------------------------------------------------
def test_filling_is_deterministic_and_follows_the_world_shares(tmp_path):
    path = big_file(tmp_path, 20_000, adults=1)
    a, _, report = load(path, seed=5)
    b, _, _ = load(path, seed=5)
    c, _, _ = load(path, seed=6)
    for attr in ("female", "hazards"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr))
        assert not np.array_equal(getattr(a, attr), getattr(c, attr))
    assert np.array_equal(a.dwellings.estate, b.dwellings.estate)
    world = world_tree()["world"]
    hazards = world["hazards"]
    for share, expected in [(a.female.mean(), world["female"]["social_rented"]["value"]),
                            (a.has_hazard("damp").mean(), hazards["damp"]["social_rented"]["value"]),
                            (a.has_hazard("falls").mean(), hazards["falls"]["social_rented"]["value"])]:
        assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / a.n)
    assert "world.female" in report.filled["sex"] and "20000 tenants" in report.filled["sex"]
    assert "world.hazards.damp" in report.filled["damp"] and "20000 dwellings" in report.filled["damp"]


def test_blank_cells_are_filled_per_cell_and_counted(tmp_path):
    rows = "".join(f"{i},social,4,{'' if i % 4 == 0 else 'F'}\n" for i in range(20, 100))
    pop, _, report = load(write(tmp_path, "age,tenure,imd_decile,sex\n" + rows))
    given = pop.age_years % 4 != 0
    assert pop.female[given].all()
    assert report.filled["sex"].startswith("blank for 20 of 80 tenants")


def test_estates_are_blocks_of_estate_size_within_tenure_and_decile(tmp_path):
    size = int(world_tree()["world"]["estate_size"]["value"])
    pop, _, report = load(big_file(tmp_path, 2 * size + 50, adults=1))
    estate, decile = pop.dwellings.estate, pop.dwellings.deprivation
    for e in np.unique(estate):
        members = estate == e
        assert members.sum() <= size and np.unique(decile[members]).size == 1
    assert np.unique(estate).size == 10  # 450 dwellings spread over 10 deciles: 45 each
    assert f"estate_size = {size}" in report.filled["estate_id"]


def test_given_estates_are_kept_and_blank_ones_are_grouped(tmp_path):
    path = write(tmp_path, "age,tenure,imd_decile,estate_id\n30,social,2,Oak\n31,social,2,\n32,social,2,Oak\n"
                           "33,social,2,Elm\n")
    pop, _, report = load(path)
    assert pop.dwellings.estate.tolist() == [0, 2, 0, 1]
    assert report.filled["estate_id"].startswith("blank for 1 of 4 dwellings")


# -- errors ----------------------------------------------------------------------------------
HEAD = "tenant_id,dwelling_id,household_id,age,tenure,imd_decile,sex,damp,weight,health\n"
GOOD = "t1,D1,H1,40,social,2,F,no,1,good\n"
NOT_A_NUMBER = "'abc' is not a number (fix: give the age in years, 16 to 120)"
DISAGREES = "disagrees with line 2"


@pytest.mark.parametrize("row, column, expected", [
    ("t2,D2,H2,abc,social,2,F,no,1,good", "age", NOT_A_NUMBER),
    ("t2,D2,H2,15,social,2,F,no,1,good", "age", "'15' is outside 16 to 120"),
    ("t2,D2,H2,,social,2,F,no,1,good", "age", "the cell is blank"),
    ("t2,D2,H2,nan,social,2,F,no,1,good", "age", "'nan' is not a number"),
    ("t2,D2,H2,40,rented,2,F,no,1,good", "tenure", "'rented' is not a tenure (fix: give one of: owner_occ"),
    ("t2,D2,H2,40,social,11,F,no,1,good", "imd_decile", "'11' is not a whole number from 1 to 10"),
    ("t2,D2,H2,40,social,2.5,F,no,1,good", "imd_decile", "'2.5' is not a whole number"),
    ("t2,D2,H2,40,social,2,X,no,1,good", "sex", "'X' is not F, M, female or male"),
    ("t2,D2,H2,40,social,2,F,maybe,1,good", "damp", "'maybe' is not yes or no"),
    ("t2,D2,H2,40,social,2,F,no,0,good", "weight", "'0' is not above 0"),
    ("t2,D2,H2,40,social,2,F,no,1,great", "health", "'great' is not a state of health (fix: give one of: "
                                                    "good, fair, bad"),
    ("t1,D2,H2,40,social,2,F,no,1,good", "tenant_id", "'t1' is also on line 2"),
    ("t2,D1,H1,40,private,2,F,no,1,good", "tenure", f"'private' {DISAGREES} ('social') in dwelling 'D1'"),
    ("t2,D1,H1,40,social,3,F,no,1,good", "imd_decile", f"'3' {DISAGREES} ('2') in dwelling 'D1'"),
    ("t2,D1,H1,40,social,2,F,yes,1,good", "damp", f"'yes' {DISAGREES} ('no') in dwelling 'D1'"),
    ("t2,D2,H1,40,social,2,F,no,1,good", "household_id", "household 'H1' is also in another dwelling"),
])
def test_a_bad_cell_is_reported_with_its_line_column_and_fix(tmp_path, row, column, expected):
    path = write(tmp_path, HEAD + GOOD + row + "\n")
    message, details = error(path)
    assert message.startswith(f"{path}: 1 problem, nothing was loaded: line 3, column {column}: {expected}")
    assert len(details) == 1 and details[0].startswith(f"line 3, column {column}: {expected}")
    assert "(fix: " in details[0]


def test_every_bad_row_is_reported(tmp_path):
    rows = [GOOD, "t2,D2,H2,abc,social,2,F,no,1,good\n", GOOD.replace("t1,D1,H1", "t3,D3,H3"),
            "t4,D4,H4,40,castle,2,F,no,1,good\n", "t5,D5,H5,40,social,0,F,no,1,good\n"]
    message, details = error(write(tmp_path, HEAD + "".join(rows)))
    assert "3 problems, nothing was loaded: line 3, column age" in message
    assert [line.split(",")[0] for line in details] == ["line 3", "line 5", "line 6"]


def test_many_problems_show_three_on_the_line_and_all_in_the_details(tmp_path):
    path = write(tmp_path, "age,tenure,imd_decile\n" + "x,social,2\n" * 25)
    message, details = error(path)
    assert "25 problems" in message and message.count("line ") == 3
    assert message.endswith(f"and 22 more (hhsim validate {path} lists them all)")
    assert len(details) == 25 and details[20].startswith("line 22, column age")


@pytest.mark.parametrize("header, unknown, guess", [
    ("agee,tenure,imd_decile", "agee", "age"),
    ("age,tenure,imd decile", "imd decile", "imd_decile"),
    ("age,tenure,imd_decile,mental health", "mental health", "mental_health"),
    ("age,tenure,imd_decile,dwelling", "dwelling", "dwelling_id"),
])
def test_an_unknown_column_suggests_the_close_name(tmp_path, header, unknown, guess):
    message = problems(write(tmp_path, header + "\n" + "40,social,2,x\n"))
    assert f"line 1, column {unknown}: unknown column (fix: did you mean '{guess}'?)" in message


def test_header_problems_are_all_reported(tmp_path):
    text = "age,tenure,age,colour,\n40,social,40,red,\n41,social,41,blue,9\n"
    message, details = error(write(tmp_path, text))
    assert "4 problems" in message
    message = " ".join(details)
    assert "line 1, column imd_decile: the column is missing (fix: add a column named imd_decile)" in message
    assert "line 1, column age: appears twice (columns 1 and 3)" in message
    assert "line 1, column colour: unknown column (fix: remove it, or rename it to one of: age," in message
    assert "line 1, column 5: the column has values but no name" in message


def test_a_row_with_extra_values_is_reported(tmp_path):
    text = "age,tenure,imd_decile\n40,social,2\n41,social,2,,,7\n42,social,2,,\n"
    message = problems(write(tmp_path, text))
    assert "1 problem," in message and "line 3: has 6 values but the header names 3 columns" in message


@pytest.mark.parametrize("content, expected", [
    (b"", "the file is empty"),
    (b"\n  \n,,\n", "the file is empty"),
    (b"age,tenure,imd_decile\n", "the file has a header but no rows"),
    (b"40,social,2\n41,social,2\n", "line 1: names no known column, so the file has no header row"),
    (b"age;tenure;imd_decile\n40;social;2\n", "line 1: values are separated by ';', not commas"),
    (b"PK\x03\x04\x14\x00\x06\x00", "is a spreadsheet workbook, not CSV text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a text file"),
    (b"age,tenure,imd_decile\n40,soci\xe9t\xe9,2\n", "line 2: is not UTF-8 text"),
])
def test_a_file_that_is_not_a_stock_csv_is_one_problem(tmp_path, content, expected):
    path = tmp_path / "stock.csv"
    path.write_bytes(content)
    message = problems(path)
    assert message.startswith(f"{path}: 1 problem, nothing was loaded: ")
    assert expected in message and "(fix: " in message


def test_a_missing_file_or_folder_is_one_problem(tmp_path):
    assert "stock file not found (fix: check the path)" in problems(tmp_path / "nope.csv")
    assert "is a folder, not a stock file" in problems(tmp_path)


def test_nothing_is_returned_or_drawn_when_the_last_line_is_bad(tmp_path):
    path = big_file(tmp_path, 500, adults=2)
    path.write_text(path.read_text() + "D9999,40,social,99\n")
    rng = np.random.default_rng(3)
    with pytest.raises(HhsimError, match="line 1002, column imd_decile"):
        load_stock(path, world_tree(), CHAINS, rng)
    assert rng.random() == np.random.default_rng(3).random()  # the fill draws were never made
