"""Engine speed and memory: the default model at 10k, 100k and 1M tenants x 120 months.

Each size runs in a fresh process. Printed per size: seconds to build (population and
initial states; the model's calibration is excluded, done once per process), seconds to
run, person-months per second (best of --repeat runs), peak resident memory, and memory per
person = (peak RSS - RSS before the population was built) / persons. Persons are the
tenants and, with the default model, their children (about 0.34 per social-renting adult);
``--no-children`` runs the adults only (as before model 3).

    python benchmarks/engine.py                    # 10k, 100k, 1M x 120 months
    python benchmarks/engine.py --sizes 10000 --months 24 --repeat 1
    python benchmarks/engine.py --interventions    # with three interventions running
    python benchmarks/engine.py --turnover         # tenancies turn over (an open population)
    python benchmarks/engine.py --no-children      # adults only

``--interventions`` runs personalised support (1 FTE per 1,000 tenants), a repairs
programme (£100 per tenant a year) and a rate_ratio what-if enrolling everyone aged 65 or
over, all for the whole horizon: the cost of the intervention layer at scale.
``--turnover`` turns tenancies over (``[population] turnover = true``): the slots of the
waiting list (about 0.64 of social renters over 120 months) are simulated too, so person-months
count the starting persons only.

Targets: at least 6 million person-months per second at 1M tenants on one core, and at most
300 bytes per person.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

#: One core: numerical libraries may not start threads of their own.
ONE_CORE = {**os.environ, **{v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                             "MKL_NUM_THREADS")}}

CHILD = r"""
import json, resource, sys, time
from hhsim.health.model_file import calibrated_model
from hhsim.interventions import resolve
from hhsim.model.simulation import HousingHealthModel, RunConfig
from hhsim.core.resources import default_model_tree, world_tree

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

n, months, repeat = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
interventions = ()
if sys.argv[4] == "1":
    money = {"unit": "£ per year", "price_year": "2023/24", "source": "benchmark"}
    interventions = tuple(resolve(t, "benchmark") for t in (
        {"type": "personalised_support", "name": "support", "end_month": months,
         "capacity": {"staff_fte": n / 1000}},
        {"type": "home_repairs", "name": "repairs",
         "capacity": {"budget_per_year": {"value": 100.0 * n, **money}}},
        {"type": "rate_ratio", "name": "older", "eligibility": {"age": [65, 200]},
         "effects": {"gp": {"target": "services.gp", "rate_ratio": 0.9}}}))
calibrated_model(default_model_tree(), world_tree())
before = rss_mb()
best = None
for r in range(repeat):
    t0 = time.perf_counter()
    m = HousingHealthModel(RunConfig(model_tree=default_model_tree(), world_tree=world_tree(),
                                     tenants=n, tenure={"social_rented": 1.0}, steps=months, seed=r,
                                     interventions=interventions, turnover=sys.argv[5] == "1",
                                     children=None if sys.argv[6] == "1" else False))
    t1 = time.perf_counter()
    m.run()
    t2 = time.perf_counter()
    if best is None or t2 - t1 < best[1]:
        best = (t1 - t0, t2 - t1)
    m.release()  # free the tenant arrays before the next model is built
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"tenants": n, "persons": sum(m.simulated.values()), "months": months,
                  "build_s": best[0], "run_s": best[1],
                  "peak_mb": peak, "bytes_per_person": (peak - before) * 2**20 / sum(m.simulated.values())}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--months", type=int, default=120)
    p.add_argument("--repeat", type=int, default=2, help="runs per size; the fastest counts")
    p.add_argument("--interventions", action="store_true", help="run three interventions too")
    p.add_argument("--turnover", action="store_true", help="tenancies turn over")
    p.add_argument("--no-children", action="store_true", help="adults only ([population] children = false)")
    args = p.parse_args()
    print(f"{'tenants':>10} {'persons':>10} {'months':>6} {'build s':>8} {'run s':>8} "
          f"{'M person-months/s':>18} {'peak MB':>8} {'bytes/person':>12}")
    for n in args.sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(args.months), str(args.repeat),
                              str(int(args.interventions)), str(int(args.turnover)),
                              str(int(not args.no_children))],
                             capture_output=True, text=True, check=True, env=ONE_CORE)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rate = r["persons"] * r["months"] / r["run_s"] / 1e6
        print(f"{r['tenants']:>10,} {r['persons']:>10,} {r['months']:>6} {r['build_s']:>8.2f} "
              f"{r['run_s']:>8.2f} {rate:>18.2f} {r['peak_mb']:>8.0f} {r['bytes_per_person']:>12.0f}")


if __name__ == "__main__":
    main()
