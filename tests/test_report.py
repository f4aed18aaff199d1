"""The HTML report: written from an output folder, opened in headless Chromium, every figure loads."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import hhsim
from hhsim.cli import main
from hhsim.core.errors import HhsimError
from hhsim.report import Section, write_report
from hhsim.report.figures import FIGURES

from conftest import ROOT

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
