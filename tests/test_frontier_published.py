"""The efficiency frontier on published cases with extended dominance (issue 19): the
statuses and ICERs of hhsim.analysis.cost_effectiveness.frontier against the published
ones, and against the same figures worked out by hand.

Sources:

- the six strategies of the U.S. Department of Veterans Affairs Health Economics Resource
  Center's cost-effectiveness page, as encoded in dampack's test of calculate_icers
  (DARTH-git/dampack, tests/testthat/test_calculate_icers.R, "example from
  herc.research.va.gov/include/page.asp?id=cost-effectiveness-analysis");
- the eleven Clostridioides difficile treatment strategies of dampack's vignette "Basic
  Cost Effectiveness Analysis", Example 2 (Rajasingham R, Enns EA, Khoruts A, Vaughn BP.
  Clin Infect Dis 2020;70(5):754-762; mean cost and QALYs over dampack's psa_cdiff), with
  the vignette's published table of ICERs (DARTH-git/dampack, vignettes/cdiff_icers.csv).
"""

from __future__ import annotations

import itertools

import pytest

from hhsim.analysis.cost_effectiveness import frontier

# HERC / dampack: strategy (cost $, effect). By hand, ordered by cost: UC 5,000; B 10,000;
# A 12,000; C 25,000; D 35,000; E 55,000. A is strongly dominated by B (dearer, 1.5 < 2).
# ICERs along UC-B-C-D-E: 5,000, 15,000, 10,000, 20,000: C's 15,000 is above D's 10,000
# against C, so C is extendedly dominated (a mix of B and D does better). Without C:
# B-D 25,000 / 2 = 12,500, then D-E 20,000 / 1 = 20,000, increasing: the frontier.
HERC = {"UC": (5000, 1.0), "A": (12000, 1.5), "B": (10000, 2.0), "C": (25000, 3.0),
        "D": (35000, 4.0), "E": (55000, 5.0)}
HERC_STATUS = {"UC": "reference", "B": "frontier", "D": "frontier", "E": "frontier",
               "C": "extendedly dominated", "A": "dominated"}
HERC_ICER = {"B": ("UC", 5000.0), "D": ("B", 12500.0), "E": ("D", 20000.0)}

# dampack vignette, Example 2: Strategy, Cost, Effect, ICER and Status as published
# (ND non-dominated, ED extendedly dominated, D strongly dominated).
CDIFF = [
    ("s3", 57336.0059896538, 12.9399639202408, None, "ND"),
    ("s27", 57541.2526373815, 13.0140640696275, 2769.85470915263, "ND"),
    ("s33", 57642.2587507842, 13.0389116321918, 4065.03105249231, "ND"),
    ("s31", 57934.0743411241, 13.0966257932217, 5056.2216470406, "ND"),
    ("s43", 58072.1137208494, 13.11285766912, 8504.2160616553, "ND"),
    ("s44", 58665.7823044647, 13.1283328397025, 38362.6519947134, "ND"),
    ("s39", 57814.6470919581, 13.0462790163185, None, "ED"),
    ("s4", 57887.481549326, 12.9970657153765, None, "D"),
    ("s13", 58018.6252420203, 13.0650412387992, None, "D"),
    ("s37", 58081.7947984323, 13.1029711156978, None, "D"),
    ("s20", 58634.2026441398, 13.1100568867995, None, "D"),
]
STATUS = {"ND": ("reference", "frontier"), "ED": ("extendedly dominated",), "D": ("dominated",)}


@pytest.mark.parametrize("order", [list(HERC), sorted(HERC, reverse=True)])
def test_herc_six_strategies_one_extendedly_and_one_strongly_dominated(order):
    f = frontier(order, [HERC[s][0] for s in order], [HERC[s][1] for s in order]).set_index("arm")
    assert f["status"].to_dict() == HERC_STATUS
    for arm, (comparator, value) in HERC_ICER.items():
        assert f.loc[arm, "comparator"] == comparator
        assert f.loc[arm, "icer"] == pytest.approx(value, rel=1e-12)
    assert f.loc[["UC", "A", "C"], "icer"].isna().all()


def test_dampack_c_difficile_strategies_match_the_published_icer_table():
    names, costs, effects = zip(*((s, c, e) for s, c, e, _, _ in CDIFF), strict=True)
    f = frontier(names, costs, effects).set_index("arm")
    assert {s: f.loc[s, "status"] in STATUS[status] for s, *_, status in CDIFF} == dict.fromkeys(names, True)
    published = {s: icer for s, _, _, icer, _ in CDIFF if icer is not None}
    on_frontier = [s for s, *_, status in CDIFF if status == "ND"]  # published in cost order
    for previous, s in itertools.pairwise(on_frontier):
        assert f.loc[s, "comparator"] == previous
        assert f.loc[s, "icer"] == pytest.approx(published[s], rel=1e-9)
    assert f.loc["s3", "status"] == "reference"
    # s39 by hand: its ICER against s33, 172.388 / 0.007367 = 23,399 per QALY, is above
    # s31's against s39, 119.427 / 0.050347 = 2,372: extendedly dominated. Without it s31's
    # ICER against s33 is 5,056.22, the published value.
    assert f.loc["s31", "icer"] == pytest.approx((57934.0743411241 - 57642.2587507842)
                                                 / (13.0966257932217 - 13.0389116321918))
