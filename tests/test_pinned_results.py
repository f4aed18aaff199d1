"""Results pinned: a small run of every shipped experiment gives the records it gave when
these digests were written (issue 20: refactoring must not move a number).

A change that moves results on purpose (a model change) updates the digests in one commit
that says what moved and why (``docs/changes.md``):

    python tests/test_pinned_results.py --update
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
PINNED = Path(__file__).resolve().parent / "pinned" / "results.json"
EXPERIMENTS = sorted([*(ROOT / "experiments").glob("*.toml"),
                      *(ROOT / "calibration" / "experiments").glob("*.toml")])
SIGNIFICANT = 10  # digits kept: bit-level noise of a library's float rounding is not a change


def small_run(path: Path) -> pd.DataFrame:
    """The records of a small run of the experiment at ``path`` (1 replication, 24 months at
    most: two winters, and programmes that start in the second year)."""
    from hhsim.api import run_experiment
    from hhsim.experiment.plan import load_experiment

    exp = load_experiment(path)
    yearly = exp.trees(exp.arms[0])[0].get("model", {}).get("cycle") == "year"
    options = {"months": 24 if yearly else min(exp.experiment.months, 24), "replications": 1}
    if exp.population.stock is None:
        options["tenants"] = 300
    with tempfile.TemporaryDirectory() as tmp:
        return run_experiment(exp, Path(tmp) / "out", workers=1, **options).records


def digest(records: pd.DataFrame) -> str:
    """SHA-256 of the records: labels as text, numbers to ``SIGNIFICANT`` digits."""
    parts = []
    for column in sorted(records.columns):
        values = records[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            text = ",".join(f"{x:.{SIGNIFICANT}g}" for x in values.to_numpy(dtype=float))
        else:
            text = ",".join(map(str, values))
        parts.append(f"{column}={text}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_small_run_of_each_shipped_experiment_gives_its_pinned_records(path):
    pinned = json.loads(PINNED.read_text())
    key = str(path.relative_to(ROOT))
    assert key in pinned, f"{key} has no pinned digest: python tests/test_pinned_results.py --update"
    assert digest(small_run(path)) == pinned[key], (
        f"{key}: the records moved; if on purpose, update the digests in a commit that says why")


def test_the_digest_sees_a_change_in_the_tenth_digit_and_nothing_smaller():
    records = pd.DataFrame({"arm": ["a", "b"], "nhs_cost": [123456.789012, 2.0]})
    moved = records.assign(nhs_cost=[123456.789112, 2.0])
    noise = records.assign(nhs_cost=[123456.789012 * (1 + 1e-14), 2.0])
    assert digest(records) != digest(moved) and digest(records) == digest(noise)


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    PINNED.parent.mkdir(exist_ok=True)
    PINNED.write_text(json.dumps({str(p.relative_to(ROOT)): digest(small_run(p)) for p in EXPERIMENTS},
                                 indent=1) + "\n")
    print(f"wrote {len(EXPERIMENTS)} digests to {PINNED}")
