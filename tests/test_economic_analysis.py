"""Economic analysis from run records: frontier, NMB, CEAC, payers, budget impact, break-even."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import hhsim
from hhsim.analysis.break_even import break_even_costs
from hhsim.analysis.budget_impact import BED_DAYS, CASH, budget_impact, capacity
from hhsim.analysis.by_group import group_economics
from hhsim.analysis.ceac import ceac
from hhsim.analysis.cost_effectiveness import cost_effectiveness, frontier, net_monetary_benefit
from hhsim.analysis.economics import economics
from hhsim.analysis.pairing import mean_over_replications
from hhsim.analysis.payers import intervention_payers, payers
from hhsim.core.accounting import PAYERS

from conftest import ROOT

#: Hand-made options (cost £, QALYs): C is strongly dominated by B (dearer, fewer QALYs); D
#: is extendedly dominated: its ICER against B (40,000) is above E's against D (16,667), so
#: a mix of B and E does better. Frontier A-B-E-F with ICERs 20,000, 27,273 and 200,000.
OPTIONS = {"A": (0, 0.0), "B": (10_000, 0.5), "C": (15_000, 0.4), "D": (30_000, 1.0),
           "E": (40_000, 1.6), "F": (60_000, 1.7)}
STATUS = {"A": "reference", "B": "frontier", "C": "dominated", "D": "extendedly dominated",
          "E": "frontier", "F": "frontier"}


@pytest.mark.parametrize("order", [list("ABCDEF"), list("FDBECA")])
def test_frontier_strong_and_extended_dominance(order):
    f = frontier(order, [OPTIONS[a][0] for a in order], [OPTIONS[a][1] for a in order]).set_index("arm")
    assert f["status"].to_dict() == STATUS
    assert f.loc["B", "icer"] == pytest.approx(20_000)
    assert f.loc["E", "icer"] == pytest.approx(30_000 / 1.1)
    assert f.loc["F", "icer"] == pytest.approx(200_000)
    assert f.loc["E", "comparator"] == "B"
    assert f.loc[["A", "C", "D"], "icer"].isna().all()


def test_frontier_cheaper_and_better_dominates_the_baseline():
    f = frontier(["base", "new"], [100.0, 90.0], [1.0, 1.2]).set_index("arm")
    assert f["status"].to_dict() == {"base": "dominated", "new": "reference"}


def records(arms: dict[str, tuple[float, float, float]], reps: int = 20, seed: int = 0) -> pd.DataFrame:
    """Synthetic run records: per arm (NHS care cost, intervention cost paid by the housing
    provider, QALYs) means, with shared noise per replication and a little arm noise."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 1000, reps)
    rows = []
    for r, (arm, (nhs, iv, q)) in itertools.product(range(reps), arms.items()):
        noise = rng.normal(0, 1)
        row = {"run_id": f"{arm}__r{r}", "arm": arm, "replication": r, "population": 1000.0,
               "nhs_cost": nhs + shared[r] + 50 * noise, "intervention_cost": iv,
               "intervention_cost_works": iv, "cost_social_care": 500.0 + 10 * noise,
               "cost_local_authority": 0.0, "qalys": q + shared[r] / 1e4 + 0.01 * noise}
        row["cost_nhs"] = row["nhs_cost"]
        row["cost_housing_provider"] = iv
        for k in [k for k in row if k.startswith(("cost_", "nhs_cost", "intervention_cost"))]:
            row[f"{k}_undisc"] = row[k] * 1.1
        rows.append(row)
    return pd.DataFrame(rows)


def test_nmb_icer_interval_only_where_qalys_differ():
    rec = records({"baseline": (10_000, 0, 100.0), "clear": (9_000, 3_000, 100.5),
                   "unclear": (9_500, 1_000, 100.0)})
    ce = cost_effectiveness(rec, "baseline").set_index("arm")
    assert ce.loc["clear", "status"] == "frontier"
    assert ce.loc["clear", "icer_low"] < ce.loc["clear", "icer"] < ce.loc["clear", "icer_high"]
    assert ce.loc["unclear", "d_qalys_low"] < 0 < ce.loc["unclear", "d_qalys_high"]
    nmb = net_monetary_benefit(rec, "baseline", [20_000, 30_000]).set_index(["arm", "threshold"])
    for arm, t in itertools.product(["clear", "unclear"], [20_000.0, 30_000.0]):
        d = ce.loc[arm]
        assert nmb.loc[(arm, t), "inmb"] == pytest.approx(t * d["d_qalys"] - d["d_cost"])
        assert nmb.loc[(arm, t), "inmb_low"] < nmb.loc[(arm, t), "inmb"] < nmb.loc[(arm, t), "inmb_high"]
    alone = cost_effectiveness(rec[rec["arm"] != "clear"].assign(
        qalys=lambda d: d["qalys"] + 0.005 * (d["arm"] == "unclear")), "baseline").set_index("arm")
    assert alone.loc["unclear", "d_qalys_low"] < 0 < alone.loc["unclear", "d_qalys"]
    assert alone.loc["unclear", "status"] == "frontier" and alone.loc["unclear", "icer"] > 0
    assert alone.loc["unclear", "icer_note"] and np.isnan(alone.loc["unclear", "icer_low"])


def test_ceac_from_draws():
    rec = records({"baseline": (10_000, 0, 100.0), "dear": (9_000, 3_000, 100.5)}).assign(
        cost=lambda d: d["nhs_cost"] + d["intervention_cost"])
    curve = ceac(rec, [0, 3_000, 1e6]).set_index(["threshold", "arm"])["probability"]
    assert curve.groupby("threshold").sum().to_numpy() == pytest.approx([1, 1, 1])
    assert curve[(0.0, "baseline")] == 1  # nothing is worth paying for: cheapest wins
    assert curve[(1e6, "dear")] == 1
    # Parameter points as draws: replications averaged within each point first.
    points = mean_over_replications(rec.assign(point=rec["replication"] // 5))
    assert len(points) == 2 * 4 and "replication" not in points
    by_point = ceac(points, [3_000]).set_index("arm")["probability"]
    assert by_point.sum() == pytest.approx(1) and by_point.index.tolist() == ["baseline", "dear"]


def test_payers_sum_to_totals_and_split_interventions():
    rec = records({"baseline": (10_000, 0, 100.0), "repairs": (9_000, 3_000, 100.5)})
    payer_of = intervention_payers({"baseline": [],
                                    "repairs": [{"name": "works", "payer": "housing_provider"}]})
    t = payers(rec, "baseline", payer_of).set_index(["arm", "payer"])
    for arm in ("baseline", "repairs"):
        assert t.loc[[(arm, p) for p in PAYERS], "cost"].sum() == pytest.approx(t.loc[(arm, "total"), "cost"])
        assert (t.loc[arm, "care_cost"] + t.loc[arm, "intervention_cost"]).to_numpy() == pytest.approx(
            t.loc[arm, "cost"].to_numpy())
    assert t.loc[("repairs", "housing_provider"), "intervention_cost"] == pytest.approx(3_000)
    assert t.loc[("repairs", "housing_provider"), "saving"] == pytest.approx(-3_000)
    saving = t.loc[("repairs", "nhs"), "saving"]
    mean = rec.groupby("arm")["nhs_cost"].mean()
    assert saving == pytest.approx(mean["baseline"] - mean["repairs"])
    assert t.loc[("repairs", "total"), "saving"] == pytest.approx(
        sum(t.loc[("repairs", p), "saving"] for p in PAYERS))


def test_break_even_scale_gives_roi_one_and_zero_nmb():
    rec = records({"baseline": (10_000, 0, 100.0), "repairs": (9_000, 3_000, 100.2)})
    be = break_even_costs(rec, "baseline", [20_000]).set_index("target")
    roi = economics(rec, "baseline")["roi"].iloc[0]
    assert be.loc["ROI = 1", "scale"] == pytest.approx(roi)
    for target in be.index:
        k = be.loc[target, "scale"]
        scaled = rec.copy()
        for col in ("intervention_cost", "cost_housing_provider"):
            scaled[col] = rec[col] * k
        if target == "ROI = 1":
            assert economics(scaled, "baseline")["roi"].iloc[0] == pytest.approx(1)
        else:
            nmb = net_monetary_benefit(scaled, "baseline", [20_000]).set_index("arm")
            assert nmb.loc["repairs", "inmb"] == pytest.approx(0, abs=1e-6)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny home-repairs batch (3 arms x 2 replications, 24 months)."""
    return hhsim.run_experiment(ROOT / "experiments" / "home-repairs.toml",
                                out=tmp_path_factory.mktemp("econ") / "out", workers=1,
                                tenants=600, months=24, replications=2)


def test_budget_impact_sums_to_undiscounted_totals(tiny):
    bi = tiny.analysis["budget_impact"]
    rec = tiny.records.set_index(["arm", "replication"])
    assert set(bi["year"]) == {1, 2}
    for arm, payer in itertools.product(["repairs", "repairs-cheapest-first"], PAYERS):
        b = bi[(bi["arm"] == arm) & (bi["payer"] == payer)]
        want = (rec.loc[arm, f"cost_{payer}_undisc"] - rec.loc["baseline", f"cost_{payer}_undisc"]).mean()
        assert b["difference"].sum() == pytest.approx(want, rel=1e-6, abs=1e-3)
        if payer != "nhs":
            assert (b.loc[b["component"] == BED_DAYS, "spend"] == 0).all()
    nhs = bi[(bi["arm"] == "baseline") & (bi["payer"] == "nhs")]
    beds = sum(tiny.records.loc[tiny.records["arm"] == "baseline", c].mean()
               for c in tiny.records if c.endswith(("_bed_days_undisc", "_delayed_days_undisc")))
    assert nhs.loc[nhs["component"] == BED_DAYS, "spend"].sum() == pytest.approx(beds, rel=1e-6)
    assert nhs.loc[nhs["component"] == CASH, "spend"].sum() > 0
    cap = capacity(tiny.monthly(), tiny.records, "baseline")
    freed = cap[(cap["arm"] == "repairs") & (cap["measure"] == "bed days")]["freed"].sum()
    assert freed == pytest.approx((rec.loc["baseline", "bed_days"] - rec.loc["repairs", "bed_days"]).mean())
    assert budget_impact(tiny.monthly(), tiny.records, "baseline").equals(bi)


def test_group_results_add_up_to_run_totals(tiny):
    ge = tiny.analysis["group_economics"]
    q = ge[(ge["dimension"] == "deprivation_decile") & (ge["measure"] == "qalys_gained")]
    ce = tiny.analysis["cost_effectiveness"]
    ce = ce[ce["perspective"] == "public_sector"].set_index("arm")
    for arm in ("repairs", "repairs-cheapest-first"):
        total = q.loc[q["arm"] == arm, "mean"].sum()
        assert total == pytest.approx(ce.loc[arm, "d_qalys"], rel=1e-4, abs=1e-6)
    assert set(ge["dimension"]) >= {"deprivation_decile", "age_band", "tenure", "ltc"}
    assert group_economics(pd.DataFrame(), tiny.records, "baseline").empty


def test_analysis_tables_written(tiny):
    for name, table in tiny.analysis.items():
        on_disk = pd.read_csv(tiny.out / f"{name}.csv")
        assert len(on_disk) == len(table) > 0, name


def test_printed_blocks_name_payers_and_frontier():
    from hhsim.analysis.cost_effectiveness import format_cost_effectiveness
    from hhsim.analysis.payers import format_payers

    rec = records({"baseline": (10_000, 0, 100.0), "repairs": (9_000, 3_000, 100.5)})
    payer_of = intervention_payers({"repairs": [{"name": "works", "payer": "housing_provider"}]})
    table = payers(rec, "baseline", payer_of)
    text = format_payers(table)
    row = next(line for line in text.splitlines() if line.strip().startswith("repairs"))
    change = table[table["arm"] == "repairs"].set_index("payer")["saving"].mul(-1).round()
    assert row.split()[1:] == [f"{change[p] + 0.0:+,.0f}" for p in [*PAYERS, "total"]]
    assert row.split()[3] == "+3,000"  # the housing provider pays for the works
    ce = cost_effectiveness(rec, "baseline")
    nmb = net_monetary_benefit(rec, "baseline", [20_000])
    text = format_cost_effectiveness(ce, nmb)
    icer = ce.set_index("arm").loc["repairs", "icer"]
    assert "baseline: reference" in text
    assert f"repairs: on the frontier; ICER against baseline £{icer:,.0f} per QALY" in text
    assert f"incremental NMB at £20,000/QALY: £{nmb['inmb'].iloc[-1]:,.0f}" in text
