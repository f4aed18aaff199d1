"""One validation per command (issue 20): the experiment file is read and checked once, each
arm's model compiled and its interventions parsed once, and the runs build from that plan
instead of compiling again. Counted with cProfile, as anyone can repeat with
``python -m cProfile -s ncalls -m hhsim run FILE``."""

from __future__ import annotations

import cProfile
import pstats
from pathlib import Path

import pytest

from hhsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
FOUR_ARMS = ROOT / "experiments" / "support-and-repairs.toml"
EFFECT = "interventions.older_in_poor_homes.effects.admissions.rate_ratio"
SMALL = ["--tenants", "120", "--months", "2", "--replications", "2", "--workers", "1"]


def calls(argv: list[str], codes: tuple[int, ...] = (0,)) -> dict[str, int]:
    """Calls of each hhsim function while ``hhsim argv`` runs in this process (by module
    and function name); its exit code must be one of ``codes``."""
    profile = cProfile.Profile()
    profile.enable()
    try:
        code = main(argv)
    finally:
        profile.disable()
    assert code in codes
    counts: dict[str, int] = {}
    for (path, _, name), (_, total, *_rest) in pstats.Stats(profile).stats.items():
        if "/hhsim/" in path:
            key = f"{Path(path).stem}.{name}"
            counts[key] = counts.get(key, 0) + total
    return counts


def test_run_validates_once_and_compiles_each_arm_once(tmp_path, capsys):
    n = calls(["run", str(FOUR_ARMS), *SMALL, "--out", str(tmp_path / "out"), "--quiet"])
    arms = 4
    assert n["schema.read_experiment"] == 1 and n["arms.compile_arms"] == 1
    assert n["model_file.compile_model"] == arms  # 8 runs: none compiles again
    assert n["__init__.parse_arm"] == arms
    assert n.get("schema.digest", 0) <= 1  # the plan's digest, once


@pytest.mark.parametrize("command", ["validate", "break-even"])
def test_other_commands_validate_the_experiment_once(command, tmp_path, capsys):
    argv = {"validate": ["validate", str(FOUR_ARMS)],
            "break-even": ["break-even", str(ROOT / "experiments" / "what-if-rate-ratio.toml"), "--arm",
                           "what-if", "--parameter", EFFECT,
                           "--between", "0.5", "0.99", "--tenants", "60", "--months", "2",
                           "--replications", "2", "--workers", "1"]}[command]
    n = calls(argv, codes=(0, 2))  # break-even may refuse an answer from so few runs (2)
    assert n["schema.read_experiment"] == 1


def test_psa_validates_once_and_its_probes_compile_arms_only(tmp_path, capsys):
    n = calls(["psa", str(ROOT / "experiments" / "psa-home-repairs.toml"), "--draws", "2", *SMALL,
               "--out", str(tmp_path / "psa"), "--quiet"])
    assert n["schema.read_experiment"] == 1 and n.get("plan.validate", 0) == 0
