"""What Mesa does in hhsim (docs/odd.md, section 1.3): the interventions' providers are the
model's agents, each stepped once a month, in the order they were set up (never shuffled),
and a provider's step is its intervention's month of work; the DataCollector's reporters
read the model as each step ends. Tenants are arrays, not agents."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
from test_interventions import experiment, run_all

from hhsim.batch.design import runs
from hhsim.core.accounting import discount_factor
from hhsim.core.costing import uprating_factor
from hhsim.experiment.plan import compile_plan, validate
from hhsim.interventions.base import Intervention, Settings
from hhsim.interventions.programme import ClientProgramme
from hhsim.interventions.provider import Provider
from hhsim.interventions.registry import TYPES, register
from hhsim.interventions.settings import ModelContext
from hhsim.model.simulation import HousingHealthModel

MONTHS = 4
THREE = {"name": "three", "interventions": [{"type": "personalised_support"}, {"type": "social_prescribing"},
                                            {"type": "home_repairs"}]}


def test_providers_are_the_models_agents_each_stepped_once_a_month_in_the_order_set_up(monkeypatch):
    stepped: list[tuple[int, str]] = []
    original = Provider.step

    def spy(self: Provider) -> None:
        stepped.append((self.model.month, self.name))
        original(self)

    monkeypatch.setattr(Provider, "step", spy)
    m = run_all(experiment(THREE, months=MONTHS, tenants=1500))["three"]
    activities = m.intervention("social_prescribing").settings.activities
    venues = [f"social_prescribing:{a.name}" for a in activities]
    order = ["personalised_support", "social_prescribing", *venues, "home_repairs"]
    assert len(venues) == 3
    assert [p.name for p in m.providers] == order
    assert set(m.agents) == set(m.providers)  # no other agents: tenants are arrays
    assert stepped == [(t, name) for t in range(MONTHS) for name in order]


def test_a_programmes_month_is_its_providers_step(monkeypatch):
    """The programme's work (exits, queue, referral, admission, costs) runs inside its
    provider's step, with the costs discounted at the middle of the month."""
    being_stepped: list[str] = []
    worked: list[tuple[int, float, str | None]] = []
    provider_step, programme_month = Provider.step, ClientProgramme.step

    def step(self: Provider) -> None:
        being_stepped.append(self.name)
        provider_step(self)
        being_stepped.pop()

    def month(self: ClientProgramme, t: int, discount: float) -> None:
        worked.append((t, discount, being_stepped[-1] if being_stepped else None))
        programme_month(self, t, discount)

    monkeypatch.setattr(Provider, "step", step)
    monkeypatch.setattr(ClientProgramme, "step", month)
    run_all(experiment({"name": "support", "interventions": [{"type": "personalised_support"}]},
                       months=MONTHS, tenants=1500))
    assert worked == [(t, discount_factor(0.035, (t + 0.5) / 12), "personalised_support")
                      for t in range(MONTHS)]


class Letters(Intervention):
    """A type without a provider of its own: a letter to every tenant each month."""

    def start(self) -> None:
        self.months: list[int] = []

    def step(self, t: int, discount: float) -> None:
        self.months.append(t)

    def record(self) -> dict[str, float]:
        return {}


def parse_letters(tree: Mapping[str, Any], ctx: ModelContext) -> Settings:
    return Settings(name=tree["name"], kind=tree["type"], payer="nhs")


@pytest.fixture
def letters() -> Iterator[None]:
    register("letters", parse=parse_letters, defaults={"type": "letters"})(Letters)
    yield
    del TYPES["letters"]


def test_a_type_without_a_provider_of_its_own_gets_one_that_does_its_month(letters):
    arm = {"name": "letters", "interventions": [{"type": "personalised_support"}, {"type": "letters"}]}
    m = run_all(experiment(arm, months=MONTHS, tenants=500))["letters"]
    assert [(p.name, p.places, p.budget_per_year) for p in m.providers][1:] == [("letters", None, None)]
    assert m.intervention("letters").months == list(range(MONTHS))


def test_each_row_of_the_monthly_table_is_the_model_read_as_its_step_ends():
    """Checked against the tenant arrays, the ledger's totals (use in the step, £ spent on
    interventions) and the provider, step by step."""
    spec = next(s for s in runs(compile_plan(validate(experiment(THREE, months=MONTHS + 1, tenants=1500))))
                if s.arm == "three")
    m = HousingHealthModel(spec.config)
    m.step()  # the first row also carries what the start boundary adds
    provider = m.intervention("personalised_support").provider
    priced = {a.name: a.unit_cost * uprating_factor(a.price_year, "2023/24")
              for a in m.activities.values() if a.intervention and a.unit_cost is not None}
    spent = 0.0
    for t in range(1, MONTHS + 1):
        before = dict(m.ledger.totals)
        m.step()
        row = m.datacollector.get_model_vars_dataframe().iloc[-1]
        pop, weight = m.pop, m.pop.weight.astype(np.float64)
        assert len(m.datacollector.get_model_vars_dataframe()) == t + 1
        assert row["alive"] == m.people_alive == pytest.approx(weight[pop.alive].sum(), rel=1e-12)
        assert row["deaths"] == pytest.approx(weight[m.death_month == t].sum(), rel=1e-12)
        for c, chain in m.health.chains.items():
            for k, state in enumerate(chain.states):
                here = pop.alive & (pop.states[c] == k)
                if chain.ages is not None:  # a chain counts the people of its ages
                    here &= chain.ages.inside[pop.age_years]
                assert row[f"{c}:{state}"] == pytest.approx(weight[here].sum(), rel=1e-9)
        use = {a: total - before[a] for a, total in m.ledger.totals.items()}
        assert {a: row[f"use:{a}"] for a in m.activities} == use
        assert row["cost:interventions"] == pytest.approx(sum(use[a] * p for a, p in priced.items()))
        spent += row["cost:interventions"]
        assert row["mean_utility"] == m.mean_utility
        assert (row["personalised_support:queue"], row["personalised_support:served"]) == (
            provider.queue_size, provider.served)
    assert spent > 0


def test_a_released_run_with_providers_can_be_freed():
    """A run's model, once released, is freed with its health model: Mesa 3.3 keeps every
    model that had an agent in ``Agent._ids`` (mesa issue #3179), which kept 27 MB a run alive
    in a sweep's workers; ``release`` drops it from there."""
    import gc
    import weakref

    spec = next(s for s in runs(compile_plan(validate(experiment(THREE, months=2, tenants=500))))
                if s.arm == "three")
    model = HousingHealthModel(spec.config)
    model.run()
    providers = len(model.agents)
    model.release()
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert providers >= 3 and ref() is None  # the providers of three interventions
