"""One derivation of each fact: every comparison of an arm with the baseline pairs through
``hhsim.analysis.pairing.aligned``, and net saving and net monetary benefit each have one
definition that every table uses."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import hhsim
import hhsim.analysis.economics as economics_module
from hhsim.analysis import pairing
from hhsim.analysis.break_even import break_even_costs
from hhsim.analysis.budget_impact import budget_impact, capacity
from hhsim.analysis.by_group import group_economics
from hhsim.analysis.ceac import ceac
from hhsim.analysis.cost_effectiveness import cost_effectiveness, net_monetary_benefit, nmb, with_cost
from hhsim.analysis.economics import cash_savings, economics, payback
from hhsim.analysis.outcomes import outcome_values
from hhsim.analysis.payers import payers
from hhsim.analysis.summary import format_interventions, summarise, summarise_groups
from hhsim.analysis.sweep import point_outcomes

from conftest import ROOT, everywhere


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> hhsim.Results:
    """A small home-repairs batch: 3 arms x 3 replications, 6 months."""
    return hhsim.run_experiment(ROOT / "experiments" / "home-repairs.toml",
                                out=tmp_path_factory.mktemp("pairing") / "out", workers=1,
                                tenants=300, months=6, replications=3)


#: Every analysis that compares an arm with the baseline, called on a batch.
COMPARISONS: dict[str, Callable[[hhsim.Results], object]] = {
    "economics": lambda r: economics(r.records, "baseline"),
    "payback": lambda r: payback(r.monthly(), r.records, "baseline"),
    "summarise": lambda r: summarise(r.records, "baseline"),
    "summarise_groups": lambda r: summarise_groups(r.groups(), r.records, "baseline"),
    "format_interventions": lambda r: format_interventions(
        r.records, {"repairs": ["repairs"]}, "baseline", {"repairs": {"repairs": "home_repairs"}}),
    "outcome_values": lambda r: outcome_values(r.records, "baseline", "repairs", "net_saving"),
    "point_outcomes": lambda r: point_outcomes(r.records.assign(point=0), ["net_saving", "roi"], "baseline"),
    "group_economics": lambda r: group_economics(r.groups(), r.records, "baseline", [20_000]),
    "cost_effectiveness": lambda r: cost_effectiveness(r.records, "baseline"),
    "net_monetary_benefit": lambda r: net_monetary_benefit(r.records, "baseline", [20_000]),
    "payers": lambda r: payers(r.records, "baseline"),
    "budget_impact": lambda r: budget_impact(r.monthly(), r.records, "baseline"),
    "capacity": lambda r: capacity(r.monthly(), r.records, "baseline"),
    "break_even_costs": lambda r: break_even_costs(r.records, "baseline", [20_000]),
}


@pytest.mark.parametrize("name", COMPARISONS)
def test_every_comparison_with_the_baseline_pairs_through_aligned(name, batch, monkeypatch):
    pairs = []
    real = pairing.aligned

    def spy(records, arm, comparator, by=()):
        pairs.append((arm, comparator))
        return real(records, arm, comparator, by)

    everywhere(monkeypatch, real, spy)
    COMPARISONS[name](batch)
    assert ("repairs", "baseline") in pairs, f"{name} pairs the arms without pairing.aligned"


def test_aligned_pairs_rows_by_draw_and_key_whatever_their_order():
    rows = [{"arm": arm, "replication": r, "step": s, "cost": 100 * r + s + (0.5 if arm == "iv" else 0)}
            for arm in ("base", "iv") for r in range(3) for s in (1, 2)]
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # shuffled
    frame = frame[~((frame["arm"] == "base") & (frame["replication"] == 2))]  # one draw unpaired
    a, b = pairing.aligned(frame, "iv", "base", by=("step",))
    assert list(a.index) == list(b.index) and len(a) == 4
    assert (a["cost"] - b["cost"] == 0.5).all()
    d = pairing.paired(frame, "base", ["cost"], by=("step",))
    assert list(d) == ["iv"] and (d["iv"]["cost"] == 0.5).all()


def test_net_saving_has_one_definition_that_every_table_uses(batch, monkeypatch):
    rec, monthly, groups = batch.records, batch.monthly(), batch.groups()

    def net_savings() -> dict:
        """The repairs arm's net saving as each table computes it."""
        return {
            "economics": economics(rec, "baseline").set_index("arm").loc["repairs", "net_saving"],
            "group_economics": group_economics(groups, rec, "baseline").query(
                "arm == 'repairs' and measure == 'net_saving'")["mean"].to_numpy(),
            "outcome_values": outcome_values(rec, "baseline", "repairs", "net_saving"),
            "point_outcomes": point_outcomes(rec.assign(point=0), ["net_saving"], "baseline").query(
                "arm == 'repairs'")["value"].to_numpy(),
            "cash_savings": cash_savings(monthly, rec, "baseline")["repairs"]["net_saving"].to_numpy(),
        }

    before = net_savings()
    real = economics_module.net_saving
    monkeypatch.setattr(economics_module, "net_saving", lambda saving, cost: real(saving, cost) + 1000.0)
    after = net_savings()
    for name in before:
        assert np.allclose(np.asarray(after[name]) - before[name], 1000.0), name


def test_net_monetary_benefit_has_one_definition_that_every_table_uses(batch, monkeypatch):
    rec, groups = batch.records, batch.groups()

    def tables() -> dict[str, np.ndarray]:
        inmb = net_monetary_benefit(rec, "baseline", [20_000]).query("arm == 'repairs'")
        return {"nmb": inmb["nmb"].to_numpy(), "inmb": inmb["inmb"].to_numpy(),
                "group_economics": group_economics(groups, rec, "baseline", [20_000]).query(
                    "arm == 'repairs' and measure == 'inmb_20000'")["mean"].to_numpy(),
                "outcome_values": outcome_values(rec, "baseline", "repairs", "nmb_20000")}

    before = tables()
    curve = ceac(with_cost(rec, "public_sector"), [20_000]).set_index("arm")["probability"]
    everywhere(monkeypatch, nmb, lambda qalys, threshold, *costs: -nmb(qalys, threshold, *costs))
    after = tables()
    for name in before:
        assert np.allclose(after[name], -before[name]), name
    flipped = ceac(with_cost(rec, "public_sector"), [20_000]).set_index("arm")["probability"]
    assert not flipped.equals(curve)  # the arm with the highest NMB is now the one with the lowest
