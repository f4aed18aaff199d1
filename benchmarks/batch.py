"""Batch throughput and parent memory.

1. Throughput: the same batch (default 32 runs of 20,000 tenants x 120 months, about 20 s
   of work) on 1 and on 2 local workers; prints runs per second and the speed-up (target:
   at least 1.8x on 2 cores). Starting the workers costs about a second per batch (their
   import of hhsim, and each worker's first calibration), so short batches scale less.
2. Parent memory: batches of 10 and of 1,000 tiny runs (200 tenants x 6 months) on 2
   workers; prints the parent process's peak resident memory for each (target: flat).

    python benchmarks/batch.py [--runs 32 --tenants 20000 --months 120]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
from hhsim.api import run_experiment
from hhsim.experiment.plan import validate
runs, tenants, months, workers, out = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                       int(sys.argv[4]), sys.argv[5])
exp = validate({"experiment": {"name": "bench", "seed": 1, "months": months, "replications": runs},
                "population": {"tenants": tenants}})
t0 = time.perf_counter()
run_experiment(exp, out, workers=workers)
elapsed = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "parent_peak_mb": peak_mb}))
"""


def batch(runs: int, tenants: int, months: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", CHILD, str(runs), str(tenants), str(months),
                              str(workers), f"{tmp}/out"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=32)
    p.add_argument("--tenants", type=int, default=20_000)
    p.add_argument("--months", type=int, default=120)
    args = p.parse_args()
    one = batch(args.runs, args.tenants, args.months, 1)
    two = batch(args.runs, args.tenants, args.months, 2)
    print(f"throughput, {args.runs} runs of {args.tenants:,} tenants x {args.months} months:")
    print(f"  1 worker : {args.runs / one['seconds']:.2f} runs/s ({one['seconds']:.1f} s)")
    print(f"  2 workers: {args.runs / two['seconds']:.2f} runs/s ({two['seconds']:.1f} s)")
    print(f"  speed-up : {one['seconds'] / two['seconds']:.2f}x")
    print("parent peak memory, tiny runs (200 tenants x 6 months) on 2 workers:")
    for runs in (10, 1000):
        r = batch(runs, 200, 6, 2)
        print(f"  {runs:>5} runs: {r['parent_peak_mb']:.0f} MB ({r['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
