"""Running on a provider's stock file: given states kept, weights used, changes detected."""

import numpy as np
import pytest

from hhsim.api import run_experiment
from hhsim.batch.design import runs
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import compile_plan, load_experiment, validate
from hhsim.model.simulation import HousingHealthModel

from conftest import ROOT

STOCK = ROOT / "experiments" / "example-stock.csv"


def experiment(tmp_path, csv_text: str | None = None, **population) -> object:
    path = tmp_path / "stock.csv"
    path.write_text(csv_text if csv_text is not None else STOCK.read_text())
    return validate({"experiment": {"seed": 3, "months": 12, "replications": 2},
                     "population": {"stock": str(path), **population}}, tmp_path / "exp.toml")


def test_shipped_stock_experiment_validates():
    exp = load_experiment(ROOT / "experiments" / "own-stock.toml")
    assert exp.stock_path == STOCK.resolve()


def test_states_given_in_the_file_are_kept_and_blanks_drawn(tmp_path):
    rows = ["age,tenure,imd_decile,ltc,weight"]
    rows += [f"{30 + i % 50},social,{1 + i % 10},{'ltc' if i % 3 == 0 else ''},2.0" for i in range(3000)]
    exp = experiment(tmp_path, "\n".join(rows) + "\n")
    m = HousingHealthModel(runs(compile_plan(exp))[0].config)
    ltc = m.pop.states["ltc"]
    given = np.arange(3000) % 3 == 0
    assert (ltc[given] == 1).all()
    blank = ltc[~given]
    assert 0.2 < blank.mean() < 0.8  # drawn from the model's prevalence, not all one state
    assert m.pop.weight.sum() == pytest.approx(6000)


def test_weights_from_the_file_give_the_population_represented(tmp_path):
    exp = experiment(tmp_path)
    res = run_experiment(exp, tmp_path / "out", workers=1)
    assert (res.records["population"] == len(STOCK.read_text().strip().splitlines()) - 1).all()


def test_tenants_with_a_stock_file_is_an_error(tmp_path):
    with pytest.raises(HhsimError, match=r"population\.tenants: is not used with a stock file"):
        experiment(tmp_path, tenants=500)
    with pytest.raises(HhsimError, match="--tenants"):
        compile_plan(experiment(tmp_path), tenants=500)


def test_a_changed_stock_file_cannot_be_resumed(tmp_path):
    exp = experiment(tmp_path)
    run_experiment(exp, tmp_path / "out", workers=1)
    path = exp.stock_path
    path.write_text(path.read_text().replace("social_rented,1,", "social_rented,2,", 1))
    with pytest.raises(HhsimError, match="different experiment"):
        run_experiment(validate({"experiment": {"seed": 3, "months": 12, "replications": 2},
                                 "population": {"stock": str(path)}}, tmp_path / "exp.toml"),
                       tmp_path / "out", workers=1, resume=True)


def test_a_hazard_in_every_given_dwelling_of_a_tenure_is_refused_before_anything_runs(tmp_path):
    """Hazards come and go around the file's prevalence: 100% cannot, and the plan says so
    (so `hhsim validate` does, and `hhsim run` stops before it writes a file)."""
    rows = ["age,tenure,imd_decile,damp"] + [f"{30 + i},social,3,yes" for i in range(20)]
    with pytest.raises(HhsimError, match=r"stock file, column damp: every social_rented dwelling given has "
                                         r"the hazard"):
        compile_plan(experiment(tmp_path, "\n".join(rows) + "\n"))
