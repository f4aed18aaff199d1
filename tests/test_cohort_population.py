"""A cohort of identical people from an experiment file (issue 19, item 7): [population]
cohort = { age, sex } makes every tenant alike, without a stock file of identical rows."""

import numpy as np
import pytest

from hhsim.batch.design import runs
from hhsim.core.errors import HhsimError
from hhsim.experiment.plan import compile_plan
from hhsim.model.simulation import HousingHealthModel

from conftest import ROOT

MODEL = str(ROOT / "experiments" / "models" / "chancellor-1997-hiv.toml")


def experiment(**population):
    return {"experiment": {"months": 24, "replications": 1, "model": MODEL, "price_year": "Chancellor 1997"},
            "population": {"tenants": 50, **population}}


def test_every_tenant_of_a_cohort_is_alike():
    plan = compile_plan(experiment(cohort={"age": 60.5, "sex": "female", "imd_decile": 3}))
    m = HousingHealthModel(runs(plan)[0].config)
    assert m.pop.n == 50 and set(m.pop.age_months) == {726} and m.pop.female.all()
    assert (m.pop.dwelling == np.arange(50)).all() and set(m.pop.dwellings.deprivation) == {3}
    assert not m.pop.dwellings.hazards.any()


@pytest.mark.parametrize(("population", "where"), [
    ({"cohort": {"age": 12, "sex": "male"}}, "population.cohort.age"),
    ({"cohort": {"age": 60, "sex": "man"}}, "population.cohort.sex"),
    ({"cohort": {"age": 60, "sex": "male"}, "tenure": {"social_rented": 1.0}}, "population.tenure"),
])
def test_a_bad_cohort_is_one_line_naming_the_key(population, where):
    with pytest.raises(HhsimError) as err:
        compile_plan(experiment(**population))
    assert err.value.where == where and "\n" not in str(err.value)
