"""``docs/headlines.md``: the headline results of the shipped experiments, in one page that
one command regenerates (``hhsim headlines``), so that a change to the model shows
before -> after (docs/contributing.md).

This module chooses the experiments and writes the markdown from the tables a run stored;
``hhsim headlines`` (``hhsim.cli``, above ``hhsim.api`` in the import layers) runs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hhsim.analysis.cost_effectiveness import frontier_text
from hhsim.analysis.economics import HEADLINE, headline_cell
from hhsim.analysis.summary import HEADLINE as TOTALS
from hhsim.analysis.summary import format_interval
from hhsim.core.errors import HhsimError, unknown_key_error
from hhsim.core.version import MODEL_VERSION, package_version

if TYPE_CHECKING:
    from hhsim.api import Results

#: Experiment files that are not plain scenario experiments: pattern -> the command they are for.
NOT_SCENARIOS = {"psa-*.toml": "hhsim psa", "sensitivity-*.toml": "hhsim sensitivity"}
#: The baseline's rows: summary outcome, label and number format (as ``hhsim run`` prints them).
BASELINE = [("population", "People represented", "{:,.0f}"),
            *(next(t for t in TOTALS if t[0] == key) for key in ("deaths", "nhs_cost"))]
#: The comparison's columns, in order: economics measures, then the cost per QALY.
MEASURES = ("nhs_saving", "intervention_cost", "qalys_gained", "net_saving", "roi")


def shipped(folder: Path) -> dict[str, Path]:
    """The plain scenario experiments in ``folder`` by name (file name without .toml), sorted."""
    others = {p for pattern in NOT_SCENARIOS for p in folder.glob(pattern)}
    return {p.stem: p for p in sorted(folder.glob("*.toml")) if p not in others}


def selected(folder: Path, only: Sequence[str] = ()) -> dict[str, Path]:
    """The experiments of ``shipped`` named in ``only`` (all when empty); an unknown name is
    a one-line error."""
    every = shipped(folder)
    if not every:
        raise HhsimError(str(folder), "holds no experiment files (*.toml)",
                         "run from the repository's top folder, or give --experiments")
    for name in only:
        if name not in every:
            raise unknown_key_error("--only", name, every, what="experiment")
    return {name: path for name, path in every.items() if not only or name in only}


def _cell(text: str) -> str:
    """Text for a markdown table cell (a '|' would end the cell)."""
    return text.replace("|", "\\|")


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def section(name: str, path: str, res: Results) -> str:
    """One experiment's part of the page: what was run, the baseline arm's totals, and each
    other arm against the baseline (economics and public-sector cost per QALY)."""
    e, records = res.experiment.experiment, res.records
    tenants = int(records["tenants"].iloc[0])
    lines = [f"## {name}", "",
             f"`{path}`: {tenants:,} tenants simulated; {e.months} months; seed {e.seed}; "
             f"{e.replications} replications per arm; costs in {e.price_year} prices, discounted at "
             f"{e.discount.costs:.1%} a year ({e.discount.effects:.1%} for effects).", "",
             _row([f"baseline: {e.baseline}", "mean", "95% MC interval"]), "| --- | ---: | --- |"]
    totals = res.summary[res.summary["arm"] == e.baseline].set_index("outcome")
    for key, label, fmt in BASELINE:
        r = totals.loc[key]
        lines.append(_row([label, fmt.format(r["mean"]), format_interval(r["mc_low"], r["mc_high"], fmt)]))
    if res.economics.empty:
        return "\n".join([*lines, "", "One arm only: nothing to compare."])
    formats = {key: (label, fmt) for key, label, fmt in HEADLINE}
    ce = res.analysis["cost_effectiveness"]
    ce = ce[ce["perspective"] == "public_sector"].set_index("arm")
    lines += ["", _row([f"against {e.baseline}", *(formats[k][0] for k in MEASURES),
                        "Cost per QALY (public sector)"]),
              "| --- |" + " ---: |" * len(MEASURES) + " --- |"]
    for _, r in res.economics.iterrows():
        cells = [" ".join(filter(None, headline_cell(r, key, formats[key][1]))) for key in MEASURES]
        lines.append(_row([r["arm"], *cells, frontier_text(ce.loc[r["arm"]])]))
    return "\n".join(lines)


def merged(old: str, new: Mapping[str, str], order: Sequence[str], command: str) -> tuple[list[str], str]:
    """The sections of a page written before (``old``) with those in ``new`` (experiment name
    -> section) put in their place, in ``order``; and the commands that made it (the old
    page's, then ``command``). A page of another model version is refused: its other
    sections would not compare."""
    version = re.search(r"^- hhsim \S+, model version (\S+)$", old, re.M)
    if version is None or version.group(1) != MODEL_VERSION:
        found = version.group(1) if version else "unknown"
        raise HhsimError("--only", f"the page holds model version {found}'s results, not {MODEL_VERSION}'s",
                         "regenerate every experiment (leave out --only)")
    before = re.search(r"^- Regenerated by: (.+)$", old, re.M)
    kept = {m.group(1): m.group(0).rstrip("\n")
            for m in re.finditer(r"^## (\S+)\n.*?(?=^## |\Z)", old, re.M | re.S)}
    sections = [new.get(name, kept.get(name)) for name in order]
    return [s for s in sections if s], f"{before.group(1) if before else 'unknown'}; then `{command}`"


def page(sections: Sequence[str], command: str, replications: int) -> str:
    """The whole page: what it is, how it was made, then each experiment's ``section``."""
    head = ["# Headline results of the shipped experiments", "",
            "The headline results of every plain scenario experiment in `experiments/` (not the "
            f"{' and '.join(f'`{p}`' for p in NOT_SCENARIOS)} files, which are for "
            f"{' and '.join(f'`{c}`' for c in NOT_SCENARIOS.values())}), each with its own population "
            f"and seed but {replications} replications per arm, so that the page is comparable from one "
            "version to the next: a change that moves results shows here before -> after, and in "
            "[Changes that move results](changes.md).", "",
            f"- Regenerated by: {command if command.startswith('`') else f'`{command}`'}",
            f"- hhsim {package_version()}, model version {MODEL_VERSION}",
            f"- {replications} replications per arm",
            "- Intervals are 95% Monte-Carlo intervals: simulation noise only, for the given "
            "parameters (parameter uncertainty: `hhsim psa`). Money is labelled £ as `hhsim run` "
            "prints it, in the prices each experiment names, discounted; savings, QALYs gained and "
            "net saving are paired against the baseline of the same replication; ROI is £ of NHS "
            "care saved per £ spent on the interventions."]
    return "\n\n".join(["\n".join(head), *sections]) + "\n"
