"""Tables that cannot mislead (issue 15): no negative lower bound for a count or a cost,
groups in their natural order, and by-group results that add up to the whole."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hhsim.cli import main

from conftest import ROOT

#: Written tables and their interval columns for levels (costs, counts, QALYs: never negative).
LEVELS = {
    "summary.csv": ["mc_low", "per_1000_low"],
    "cost_effectiveness.csv": ["cost_low", "qalys_low"],
    "payers.csv": ["care_cost_low", "intervention_cost_low", "cost_low"],
    "economics.csv": ["intervention_cost_low"],  # the baseline spends nothing on interventions
}
NUMBER = r"-?[\d,]+(?:\.\d+)?"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    """Personalised support with 2 replications: wide intervals that used to cross zero."""
    out = tmp_path_factory.mktemp("honest") / "o"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["run", str(ROOT / "experiments" / "personalised-support-pilot.toml"), "--out", str(out),
                     "--tenants", "1500", "--months", "6", "--replications", "2", "--workers", "1",
                     "--quiet", "--verbose"]) == 0
    return out, buffer.getvalue()


def test_no_written_level_has_a_negative_lower_bound(run):
    out, _ = run
    for name, columns in LEVELS.items():
        table = pd.read_csv(out / name)
        for c in columns:
            assert (table[c].dropna() >= 0).all(), (name, c)
    # and the levels did reach zero somewhere: the check can fail
    assert (pd.read_csv(out / "summary.csv")["mc_low"] == 0).any()


def test_no_printed_count_or_cost_has_a_negative_lower_bound(run):
    _, text = run
    blocks = text.split("\n\n")
    totals = next(b for b in blocks if "(baseline)" in b)
    interventions = next(b for b in blocks if b.startswith("Interventions"))
    checked = 0
    for line in (*totals.splitlines(), *interventions.splitlines()):
        if line.strip().startswith("difference") or "saving per" in line:
            continue  # differences and savings may be negative
        for low in re.findall(rf"\(({NUMBER}) to {NUMBER}\)", line):
            assert float(low.replace(",", "")) >= 0, line
            checked += 1
    assert checked >= 10
    assert "referred" in interventions


def test_by_group_results_add_up_to_the_whole(run):
    out, _ = run
    econ = pd.read_csv(out / "economics.csv").set_index("arm")
    groups = pd.read_csv(out / "group_economics.csv")
    for measure in ("net_saving", "intervention_cost", "nhs_saving"):
        sums = groups[groups["measure"] == measure].groupby(["arm", "dimension"])["mean"].sum()
        for (arm, dim), total in sums.items():
            assert total == pytest.approx(econ.loc[arm, measure], rel=1e-5, abs=1e-3), (measure, dim)
    staff = groups[(groups["measure"] == "intervention_cost") & (groups["dimension"] == "ltc")]
    assert staff.set_index("group")["mean"].get("ltc", 0) > 0  # the clients' group carries the staff


def test_deciles_keep_their_natural_order(run):
    out, _ = run
    for name in ("group_economics.csv", "groups.csv"):
        table = pd.read_csv(out / name, dtype={"group": str})
        deciles = list(dict.fromkeys(table.loc[table["dimension"] == "deprivation_decile", "group"]))
        assert deciles == [str(d) for d in range(1, 11)], name
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    section = html[html.index("<section id='groups'>"):]
    rows = re.findall(r"<td>(\d+)</td>", section[:section.index("</details>")])
    shown = [int(r) for r in rows if 1 <= int(r) <= 10]
    assert shown[:10] == list(range(1, 11))
    assert np.all(np.diff(shown[:10]) == 1)


def test_a_cost_per_person_served_is_a_ratio_of_means():
    from hhsim.analysis.summary import format_interventions
    records = pd.DataFrame({"arm": ["base", "base", "sup", "sup"], "replication": [0, 1, 0, 1],
                            "nhs_cost": [1000.0, 1000.0, 900.0, 700.0],
                            "intervention_cost_s": [0.0, 0.0, 100.0, 900.0], "iv_s_admitted": [0, 0, 1, 3]})
    text = format_interventions(records, {"sup": ["s"]}, "base")
    cost = next(line for line in text.splitlines() if "cost per client" in line)
    saving = next(line for line in text.splitlines() if "saving per client" in line)
    assert cost.split()[-4] == "250.0"  # (100 + 900) / (1 + 3), not the mean of 100 and 300
    assert saving.split()[-4] == "100.0"  # (100 + 300) / 4
    assert re.search(r"\(0\.0 to [\d,.]+\)", cost)  # a cost's interval stops at 0


def test_numbers_that_round_to_zero_have_no_sign():
    from hhsim.analysis.summary import _signed, format_interval
    assert _signed(-0.2, "{:,.0f}") == "0" and _signed(0.2, "{:,.0f}") == "0"
    assert _signed(-3.0, "{:,.0f}") == "-3" and _signed(3.0, "{:,.0f}") == "+3"
    assert format_interval(-0.3, 0.2, "{:,.0f}") == "(0 to 0)"


def test_an_unknown_precision_outcome_is_named_as_such(tmp_path, capsys):
    f = tmp_path / "one.toml"
    f.write_text('[experiment]\nname = "one"\nmonths = 2\nreplications = 2\n[population]\ntenants = 20\n')
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "--precision", "5%",
                 "--precision-outcome", "foo"]) == 2
    err = capsys.readouterr().err
    assert "unknown output 'foo'" in err and not (tmp_path / "o").exists()
