"""The names of outcomes an analysis can follow (``[sensitivity] outputs``,
``--precision-outcome``), checked when an experiment is compiled: their values are computed
by ``hhsim.analysis.outcomes``, whose docstring defines each."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hhsim.core.errors import HhsimError, printable, unknown_key_error

#: Outcomes with a fixed name; plus nmb_<lambda>, incremental:<column>, mean:<column>.
OUTPUTS = ("incremental_nhs_cost", "incremental_intervention_cost", "incremental_cost", "nhs_saving",
           "net_saving", "incremental_qalys", "roi")
NMB = re.compile(r"nmb_(\d+(?:\.\d+)?)$")

def check_output(name: str, arms: Sequence[str], baseline: str, arm: str, where: str = "outputs") -> None:
    """A one-line error unless ``name`` is a known outcome for ``arm``; record columns are
    checked when the records exist (``replicate_values``)."""
    kind, _, column = name.partition(":")
    if column or kind in ("mean", "incremental"):
        if kind not in ("mean", "incremental") or not column:
            raise HhsimError(where, f"'{printable(name)}' is not an output",
                             "write mean:<record column> or incremental:<record column>")
        if kind == "mean":
            return
    elif name not in OUTPUTS and not NMB.match(name):
        raise unknown_key_error(where, name, [*OUTPUTS, "nmb_20000", "incremental:<column>",
                                              "mean:<column>"], what="output")
    if arm == baseline:
        others = [a for a in arms if a != baseline]
        fix = (f"set arm to one of {others}" if others else
               "add an arm to compare with the baseline, or use mean:<column>")
        raise HhsimError(where, f"'{name}' compares an arm with the baseline, but the arm analysed "
                         f"is the baseline '{baseline}'", fix)
