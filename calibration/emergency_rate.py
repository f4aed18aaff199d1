"""Derive adults' emergency admission rate from home by age, so that all emergency admissions,
30-day readmissions included, match England's rates by age.

The model draws emergency admissions from home at ``hospital.admissions.emergency.rate`` and
adds 30-day readmissions itself (``readmission_30d``, raised by bad health). Published rates
count both, so the rate from home is each band's published rate times the share of the
model's admissions in that band that are not readmissions. That share is measured in the
model: one run with readmissions and one without, on one seed (common random numbers), of
England's adults of every tenure (``hhsim.studies.baseline.drift.england``) over 12 months.

All emergency admissions per person-year by age (calibration/research/i16-research-los.md
section 2 and i16-research-rates-by-age.md sections 3 and 7.5):

- 85+: 0.57 = all-method finished admission episodes per person at 85+ in 2015-16 (1,137,017
  over 1,295,289: HES APC 2015-16 summary, Table 6 [V2 copy of V1]) x 65% of admissions at
  85+ that are emergencies (HSCIC, Focus on the health and care of older people, 2014 [V2]);
- 65-74 0.15 and 75-84 0.28: the rest of 2.43m emergency admissions of people 65+ (Health
  Foundation, Improvement Analytics Unit 2019 [V2]) over the 9.72m people 65+ of Table 6,
  split as the earlier assumed profile (0.16 : 0.30);
- 16-64: 0.06, 0.06, 0.06, 0.07, 0.10 (16-24 to 55-64), an assumed shape whose mean over
  England's ages 16-64 (0.069) checks against 0.074 derived from Table 6 (8.19m all-method
  episodes over 35.3m people 15-64) x 32% emergency under 65 (HSCIC 2014).

    python calibration/emergency_rate.py --tenants 300000 [--write]   # about a minute
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np

from hhsim.core.resources import default_model_tree, world_tree
from hhsim.model.simulation import HousingHealthModel, RunConfig
from hhsim.studies.baseline.drift import england

MODEL_FILE = Path(__file__).parents[1] / "hhsim" / "data" / "default_model.toml"
BREAKS = (16, 25, 35, 45, 55, 65, 75, 85)
ALL_ADMISSIONS = (0.06, 0.06, 0.06, 0.07, 0.10, 0.15, 0.28, 0.57)  # per person-year, readmissions included
MONTHS = 12


def admissions(tree: dict, tenants: int, seed: int) -> np.ndarray:
    """Adults' emergency admissions per person-year by band over ``MONTHS`` of one run."""
    world = world_tree()
    model = HousingHealthModel(RunConfig(model_tree=tree, world_tree=world, tenants=tenants,
                                         tenure=england(world), steps=MONTHS, seed=seed))
    hospital, pop = model.hospital, model.pop
    code = next(t.code for t in hospital.types if t.name == "emergency")
    count = np.zeros(len(BREAKS))
    person_years = np.zeros(len(BREAKS))

    def band(age: np.ndarray) -> np.ndarray:
        return np.searchsorted(BREAKS, age, side="right") - 1

    def on_admit(idx: np.ndarray, day: np.ndarray) -> None:
        adult = (hospital.admit_type[idx] == code) & (pop.age_years[idx] >= 16)
        np.add.at(count, band(pop.age_years[idx[adult]]), 1.0)

    hospital.on_admit.append(on_admit)
    for _ in range(MONTHS):
        alive = pop.alive & (pop.age_years >= 16)
        np.add.at(person_years, band(pop.age_years[alive]), 1.0 / 12.0)
        model.step()
    model.release()
    return count / person_years


def derive(tenants: int, seed: int) -> tuple[list[float], np.ndarray, np.ndarray]:
    """The rate from home by band, and the model's all-admission rates with and without
    readmissions at the current rate."""
    tree = copy.deepcopy(default_model_tree())
    with_readmissions = admissions(tree, tenants, seed)
    e = tree["hospital"]["admissions"]["emergency"]
    e["readmission_30d"]["value"] = [0.0] * len(BREAKS)
    from_home = admissions(tree, tenants, seed)
    share = from_home / with_readmissions
    return [round(float(x), 4) for x in np.array(ALL_ADMISSIONS) * share], with_readmissions, share


def write(rate: list[float], model_file: Path = MODEL_FILE) -> None:
    """Put the rate from home into the model file's ``hospital.admissions.emergency.rate``."""
    text = model_file.read_text()
    head = text.index("[hospital.admissions.emergency]")
    start = text.index("rate = { value = [", head)
    end = text.index("]", start)
    values = ", ".join(f"{x:g}" for x in rate)
    model_file.write_text(text[:start] + "rate = { value = [" + values + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--write", action="store_true", help="write the rate into the default model")
    args = parser.parse_args()
    start = time.time()
    rate, before, share = derive(args.tenants, args.seed)
    print("band   all now  not readmission  published  rate from home")
    for b, now, s, target, r in zip(BREAKS, before, share, ALL_ADMISSIONS, rate, strict=True):
        print(f"{b:>4}+  {now:7.4f}  {s:15.3f}  {target:9.3f}  {r:14.4f}")
    print(f"{time.time() - start:.0f} s")
    if args.write:
        write(rate)


if __name__ == "__main__":
    main()
