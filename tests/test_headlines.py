"""docs/headlines.md: ``hhsim headlines`` writes the shipped experiments' headline results,
numbers equal to those of the run's own tables; a bad name is one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

from hhsim.api import load_results, run_experiment
from hhsim.cli import main, write_headlines
from hhsim.core.version import MODEL_VERSION
from hhsim.report.headlines import shipped

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def _cells(text: str, first: str) -> list[str]:
    """The cells of the markdown table row whose first cell is ``first``."""
    row = next(line for line in text.splitlines() if line.startswith(f"| {first} |"))
    return [c.strip() for c in row.strip("|").split(" | ")]


def test_the_page_holds_the_runs_own_numbers(tmp_path):
    out, name = tmp_path / "headlines.md", "personalised-support-pilot"  # 12 months: quick
    text = write_headlines(out, EXPERIMENTS, f"hhsim headlines --only {name}", replications=2, workers=1,
                           only=[name], tenants=300)
    assert out.read_text() == text and list(tmp_path.iterdir()) == [out]  # nothing else written
    assert f"## {name}" in text and f"model version {MODEL_VERSION}" in text
    assert "## home-repairs" not in text and "2 replications per arm" in text
    # the same run (same seed, tenants, replications), read back from its own folder
    run_experiment(EXPERIMENTS / f"{name}.toml", tmp_path / "run", workers=1, replications=2, tenants=300)
    res = load_results(tmp_path / "run")
    base = res.summary[(res.summary["arm"] == "baseline") & (res.summary["outcome"] == "nhs_cost")].iloc[0]
    assert _cells(text, "NHS care cost, £ (disc.)")[1] == f"{base['mean']:,.0f}"
    assert len(res.economics) == 1
    for _, r in res.economics.iterrows():
        cells = _cells(text, r["arm"])
        assert cells[1].startswith(f"{r['nhs_saving']:,.0f} (")
        assert cells[4].startswith(f"{r['net_saving']:,.0f} (")
        assert cells[5].startswith(f"{r['roi']:,.2f} (")


def test_only_plain_scenario_experiments_are_shipped():
    names = shipped(EXPERIMENTS)
    assert "home-repairs" in names and "briggs-2006-thr" in names
    assert not any(n.startswith(("psa-", "sensitivity-")) for n in names)


def test_an_unknown_experiment_is_one_line_and_exit_code_2(tmp_path, capsys):
    out = tmp_path / "headlines.md"
    assert main(["headlines", "--experiments", str(EXPERIMENTS), "--out", str(out),
                 "--only", "home-repair"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown experiment 'home-repair'" in err and "home-repairs" in err
    assert not out.exists()


def test_only_on_an_existing_page_keeps_the_other_experiments(tmp_path, capsys):
    """--only on a page of this model version replaces those sections and keeps the rest, in
    the shipped order; a page of another model version is refused before anything runs."""
    from hhsim.report.headlines import page

    out, name = tmp_path / "headlines.md", "personalised-support-pilot"
    others = ["## home-repairs\n\nold repairs numbers", f"## {name}\n\nold pilot numbers",
              "## winter-warmth\n\nold warmth numbers"]
    out.write_text(page(others, "hhsim headlines --out x", 2))
    text = write_headlines(out, EXPERIMENTS, f"hhsim headlines --only {name}", replications=2, workers=1,
                           only=[name], tenants=300)
    assert "old repairs numbers" in text and "old warmth numbers" in text
    assert "old pilot numbers" not in text and f"## {name}" in text
    assert text.index("## home-repairs") < text.index(f"## {name}") < text.index("## winter-warmth")
    assert "`hhsim headlines --out x`; then `hhsim headlines --only" in text
    out.write_text(text.replace(f"model version {MODEL_VERSION}", "model version 1"))
    assert main(["headlines", "--experiments", str(EXPERIMENTS), "--out", str(out), "--only", name]) == 2
    assert "model version 1's results" in capsys.readouterr().err
