"""The HTML report: written from an output folder, opened in headless Chromium, every figure loads."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import hhsim
from hhsim.analysis.break_even import break_even_costs
from hhsim.analysis.budget_impact import budget_impact, capacity
from hhsim.analysis.by_group import group_economics
from hhsim.analysis.cost_effectiveness import cost_effectiveness, net_monetary_benefit
from hhsim.analysis.economics import economics, payback
from hhsim.analysis.payers import payers
from hhsim.analysis.summary import summarise, summarise_checks, summarise_groups
from hhsim.analysis.tables import analyse
from hhsim.batch.files import write_csv
from hhsim.batch.store import read_table
from hhsim.cli import main
from hhsim.core.errors import HhsimError
from hhsim.report.batch import load_batch
from hhsim.report.figures import FIGURES
from hhsim.report.page import Section, write_report
from hhsim.report.stored import read_stored

from conftest import ROOT, everywhere

#: Appended to a copy of the page: after load, counts images that did not decode.
CHECK = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const d = document.createElement('div'); d.id = 'hhsim-check';
  const sections = document.querySelectorAll('section').length;
  d.textContent = `images=${imgs.length} broken=${broken} sections=${sections}`;
  document.body.appendChild(d);
});</script>"""


def browser() -> str:
    """Chromium (installed by .ci/run): the test fails, not skips, without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: apt-get install -y chromium (.ci/run does this)"
    return found


def rendered(page) -> dict[str, int]:
    """Open ``page`` headless and return the image and section counts the check script saw."""
    args = [browser(), "--headless", "--disable-gpu", "--no-sandbox", "--virtual-time-budget=10000",
            "--dump-dom", page.as_uri()]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    found = re.search(r'<div id="hhsim-check">images=(\d+) broken=(\d+) sections=(\d+)', out.stdout)
    assert found, f"the page did not render (chromium exit {out.returncode}): {out.stderr[-500:]}"
    return dict(zip(("images", "broken", "sections"), map(int, found.groups()), strict=True))


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report") / "out"
    hhsim.run_experiment(ROOT / "experiments" / "home-repairs.toml", out=folder, workers=1,
                         tenants=500, months=24, replications=2)
    return folder


def test_report_renders_and_every_figure_loads(out, tmp_path, capsys):
    sens = out / "sensitivity-demo"
    sens.mkdir()
    (sens / "section.html").write_text("<p id='sens'>from a later analysis</p>")
    assert main(["report", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out
    html = (out / "report.html").read_text()
    for name in ("summary", "findings", "figures", "categories", "payers", "budget", "break-even", "groups",
                 "experiment", "provenance", "sensitivity-demo"):
        assert f"<section id='{name}'>" in html, name
    assert "Each £1 spent on repairs returns" in html and "id='sens'" in html
    assert "2023/24" in html and "2021" in html  # price year, seed
    for spec in FIGURES:
        assert (out / "figures" / f"{spec.name}.png").stat().st_size > 1000
        assert not (out / "figures" / f"{spec.name}.svg").exists()  # PNG only by default
    headers = re.findall(r"<th[^>]*>(.*?)</th>", html)
    assert headers and not [h for h in headers if "_" in h]  # headers in words, not code names
    page = tmp_path / "check.html"
    page.write_text(html.replace("</body>", CHECK + "</body>"))
    seen = rendered(page)
    assert seen == {"images": len(FIGURES), "broken": 0, "sections": 11}
    # The check can fail: a corrupt figure is counted as broken.
    page.write_text(page.read_text().replace("data:image/png;base64,iVBOR", "data:image/png;base64,xxxx", 1))
    assert rendered(page)["broken"] == 1


def test_report_sections_can_be_added(out):
    path = write_report(out, extra=[lambda b: Section("extra", "Extra", f"<p>{len(b.records)} runs</p>")])
    assert "<section id='extra'><h2>Extra</h2><p>6 runs</p>" in path.read_text()


def test_report_of_an_unfinished_folder_says_how_to_finish(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(HhsimError, match="--resume"):
        write_report(tmp_path)


def test_report_of_one_arm(tmp_path):
    hhsim.run_experiment(None, out=tmp_path / "one", workers=1, tenants=200, months=6, replications=1)
    html = write_report(tmp_path / "one", svg=True).read_text()
    assert "One arm only" in html and "<section id='provenance'>" in html
    svgs = sorted(p.stem for p in (tmp_path / "one" / "figures").glob("*.svg"))
    assert svgs and svgs == sorted(p.stem for p in (tmp_path / "one" / "figures").glob("*.png"))


#: The functions that compute the tables ``hhsim run`` stores: the report calls none of them.
STORED_BY_RUN = (analyse, economics, payback, summarise, summarise_groups, summarise_checks,
                 cost_effectiveness, net_monetary_benefit, payers, budget_impact, capacity, break_even_costs,
                 group_economics)


def test_report_reads_the_stored_tables_and_computes_none_again(out, monkeypatch):
    def refuse(name):
        def computed(*args, **kwargs):
            raise AssertionError(f"the report computed {name} again instead of reading it")
        return computed

    for function in STORED_BY_RUN:
        everywhere(monkeypatch, function, refuse(function.__name__))
    html = write_report(out).read_text()
    for name in ("summary", "findings", "categories", "payers", "budget", "break-even", "groups"):
        assert f"<section id='{name}'>" in html, name
    assert "Each £1 spent on repairs returns" in html


def test_the_stored_tables_read_back_as_hhsim_run_computed_them(out):
    b = load_batch(out)
    for name, table in analyse(b.records, b.monthly, b.groups, b.settings).items():
        pd.testing.assert_frame_equal(b.analysis[name], table, check_exact=True, obj=name)
    pd.testing.assert_frame_equal(b.summaries["summary"], summarise(b.records, b.baseline), check_exact=True)
    pd.testing.assert_frame_equal(b.summaries["groups"], summarise_groups(b.groups, b.records, b.baseline),
                                  check_exact=True)
    checks = summarise_checks(read_table(out, "checks", b.records["run_id"]), b.records, b.baseline)
    pd.testing.assert_frame_equal(b.summaries["checks"], checks, check_exact=True)
    econ = economics(b.records, b.baseline).merge(payback(b.monthly, b.records, b.baseline), on="arm",
                                                  how="left")
    pd.testing.assert_frame_equal(b.summaries["economics"], econ, check_exact=True)


def test_a_stored_table_keeps_its_text_numbers_and_types(tmp_path):
    path = tmp_path / "t.csv"
    table = pd.DataFrame({
        "arm": ["2024", "NA", "None", "=1+1"],
        "comparator": pd.Series([np.nan, "NA", np.nan, "2024"], dtype="str"),
        "icer_note": ["", "QALY difference interval includes 0", "", ""],
        "discounted": [True, False, True, True], "mean": [np.inf, -0.0, np.nan, 1 / 3],
        "draws": [1, 2, 3, 4]})
    write_csv(path, table)
    assert "'=1+1" in path.read_text()  # written safe from spreadsheets, read back as it was
    for frame in (table, pd.DataFrame(), pd.DataFrame(columns=["arm", "roi"])):
        write_csv(path, frame)
        pd.testing.assert_frame_equal(read_stored(path), frame, check_exact=True)


def test_a_folder_of_an_earlier_hhsim_reports_with_notes_or_one_line(out, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(out, old)
    for sums in (old / "runs").glob("*.json"):  # as hhsim 0.1.0 wrote it: no checksums
        sums.unlink()
    (old / "checksums.json").unlink()
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**{k: v for k, v in manifest.items()
                                                      if k not in ("checksums", "files")},
                                                   "hhsim_version": "0.1.0"}))
    (old / "nmb.csv").unlink()
    b = load_batch(old)
    err = capsys.readouterr().err
    assert f"hhsim: note: {old} was written by hhsim 0.1.0: its tables are shown as that version stored " \
           "them (docs/changes.md says what has changed since)\n" in err
    assert f"hhsim: note: {old} has no nmb.csv (hhsim 0.1.0 did not store them): computed from its run " \
           "records\n" in err
    pd.testing.assert_frame_equal(b.analysis["nmb"], load_batch(out).analysis["nmb"], check_exact=True)
    (old / "payers.csv").write_bytes(b"")  # unverified without checksums: refused when read
    with pytest.raises(HhsimError, match=r"payers.csv: is empty \(fix: rebuild it with 'hhsim run FILE"):
        load_batch(old)
    (old / "payers.csv").write_bytes((out / "payers.csv").read_bytes())
    (old / "economics.csv").unlink()
    with pytest.raises(HhsimError) as refused:
        load_batch(old)
    assert str(refused.value) == (f"{old}/economics.csv: is missing: hhsim 0.1.0 wrote this folder before "
                                  "results had economics.csv (fix: run the experiment again with this hhsim)")
