"""Weighting to a local profile: weighted totals reproduce the profile's counts."""

import numpy as np
import pytest

from hhsim.batch.design import runs
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import compile_plan, load_experiment
from hhsim.model.simulation import HousingHealthModel
from hhsim.world.bands import AGE_BANDS
from hhsim.world.profile import read_profile

from conftest import ROOT


def test_weights_reproduce_the_profile_cells():
    exp = load_experiment(ROOT / "experiments" / "local-profile.toml")
    profile = read_profile(exp.profile_path)
    m = HousingHealthModel(runs(compile_plan(exp))[0].config)
    pop = m.pop
    band = (np.searchsorted(AGE_BANDS, pop.age_years, side="right") - 1).clip(0, 7)
    cell = np.ravel_multi_index((band, pop.deprivation - 1, pop.tenure), profile.counts.shape)
    weighted = np.bincount(cell, weights=pop.weight, minlength=profile.counts.size)
    assert pop.weight.sum() == pytest.approx(profile.total, rel=1e-6)
    if m.people_moved == 0:
        assert np.allclose(weighted, profile.counts.ravel(), rtol=1e-5)
    assert m.people_moved < 0.01 * profile.total


def test_empty_cells_hand_their_people_to_the_nearest_cells(tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text("age_band,imd_decile,tenure,count\n45-54,3,social_rented,1000\n85+,10,social_rented,7\n")
    exp = compile_plan(load_experiment(ROOT / "experiments" / "local-profile.toml"), tenants=50).experiment
    data = exp.model_dump(exclude_unset=True)
    data["population"]["profile"] = str(csv)
    from hhsim.experiment.plan import validate
    m = HousingHealthModel(runs(compile_plan(validate(data)))[0].config)
    assert m.pop.weight.sum() == pytest.approx(1007, rel=1e-6)


@pytest.mark.parametrize("text, problem", [
    ("age_band,imd_decile,tenure,count\n16-25,1,social_rented,5\n", "line 2, column age_band: '16-25'"),
    ("age_band,imd_decile,tenure,count\n16-24,11,social_rented,5\n", "line 2, column imd_decile: '11'"),
    ("age_band,imd_decile,tenure,count\n16-24,1,castle,5\n", "line 2, column tenure: 'castle'"),
    ("age_band,imd_decile,tenure,count\n16-24,1,social_rented,-5\n", "line 2, column count: '-5'"),
    ("age_band,imd_decile,tenure,count\n16-24,1,social_rented,nan\n", "line 2, column count: 'nan'"),
    ("age_band,decile,tenure,count\n16-24,1,social_rented,5\n", "column imd_decile: the column is missing"),
    ("age_band,imd_decile,tenure,count\n16-24,1,social_rented,0\n", "no people"),
    # the same rules as a stock file (hhsim.world.csvfile)
    ("age_band,imd_decile,tenure,count,count\n16-24,1,social_rented,5,6\n", "count: appears twice"),
    ("age_band,imd_decile,tenure,count\n16-24,1,social_rented,5,9\n", "line 2: has 5 values but the header"),
    ("age_band;imd_decile;tenure;count\n16-24;1;social_rented;5\n", "separated by ';'"),
])
def test_bad_profiles_are_reported_by_line(tmp_path, text, problem):
    csv = tmp_path / "p.csv"
    csv.write_text(text)
    with pytest.raises(HhsimError, match=r"nothing was (used|loaded)") as err:
        read_profile(csv)
    assert problem in str(err.value) and "\n" not in str(err.value)


def test_a_profile_must_be_a_regular_file(tmp_path):
    with pytest.raises(HhsimError, match="not a regular file"):
        read_profile("/dev/zero")
    with pytest.raises(HhsimError, match="profile file not found"):
        read_profile(tmp_path / "none.csv")
