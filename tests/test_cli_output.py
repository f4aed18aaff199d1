"""What 'hhsim run' prints: a short headline table first, everything else with --verbose."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from hhsim.cli import main

from conftest import ROOT

SMALL = ["--tenants", "300", "--months", "6", "--replications", "3", "--workers", "1", "--quiet"]


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> dict[str, str]:
    """The output of a 3-arm run, short and --verbose (the second resumes the first's folder)."""
    out = tmp_path_factory.mktemp("cli") / "o"
    f = str(ROOT / "experiments" / "home-repairs.toml")
    texts = {}
    for kind, extra in (("short", []), ("verbose", ["--verbose", "--resume"])):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(["run", f, "--out", str(out), *SMALL, *extra]) == 0
        texts[kind] = buffer.getvalue()
    return texts


def test_the_short_output_leads_with_the_headline_table(printed):
    text = printed["short"]
    lines = text.strip().splitlines()
    assert len(lines) <= 25
    assert "repairs" in lines[5] and "repairs-cheapest-first" in lines[5]
    for label in ("NHS care saving, £", "Intervention cost, £", "Net saving, £",
                  "Return on investment, £ per £", "QALYs gained"):
        row = next(i for i, line in enumerate(lines) if line.strip().startswith(label))
        assert re.search(r"\(.+ to .+\)", lines[row + 1])  # its interval on the next line
    assert "too few to be useful" in text  # 3 replications are flagged
    assert "Checks (baseline arm)" not in text and "--verbose" in text


def test_verbose_adds_every_table(printed):
    text = printed["verbose"]
    for block in ("Totals for the people represented", "Interventions (mean per run", "Does it pay?",
                  "Who pays, who saves", "Cost-effectiveness", "Checks (baseline arm)"):
        assert block in text
    assert text.startswith(printed["short"].splitlines()[0])
