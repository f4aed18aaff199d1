"""Parameter draws for a PSA: from the ``[psa]`` distributions, or a calibration posterior.

Draws come from their own streams, apart from the runs': draws are made in blocks of
``BLOCK``, block b from ``SeedSequence(seed, spawn_key=(PSA_KEY, b))``, so draw i is the
same however many draws are made (a PSA extended by ``--precision`` rounds has exactly the
draws of one run of its final size). Within a block, distributions are drawn in the order
the file lists them, by inverting uniforms through ``Distribution.ppf``, whose
unbounded tails are cut at the 0.1% and 99.9% quantiles: exactly the range that validation
checked, so no draw can fail part-way through a long PSA. A posterior (Parquet: one column
per parameter, optionally a ``weight`` column) is resampled with probability proportional
to the weights, whole rows at a time, so the correlations calibration found are kept; the
posteriors shipped in the package (``hhsim.studies.calibration.ship``) are drawn the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hhsim.core.distributions import Dirichlet
from hhsim.core.errors import HhsimError
from hhsim.core.inputs import check_path, input_file
from hhsim.experiment.psa_section import Setup

#: spawn key of the draws' stream (replications use (0, r); see hhsim.core.randomness).
PSA_KEY = 3
#: Columns of a posterior file that are not parameters.
POSTERIOR_LABELS = ("weight", "generation", "t", "m", "id")
FIX = "give the posterior.parquet written by 'hhsim calibrate'"


#: Draws per block of the draws' streams.
BLOCK = 64


def rng_for(seed: int, block: int = 0) -> np.random.Generator:
    """The stream of block ``block`` of the draws of experiment seed ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(PSA_KEY, block)))


def psa_draws(st: Setup, n: int, seed: int,
              posterior: pd.DataFrame | Sequence[pd.DataFrame] | None = None) -> pd.DataFrame:
    """The first ``n`` draws of a PSA: the ``[psa]`` parameters (``draw_parameters``) and,
    with a ``posterior`` (or several, each resampled on its own, in order), its resampled
    whole rows, block by block (draw i is the same for any n)."""
    posteriors = ([] if posterior is None else [posterior] if isinstance(posterior, pd.DataFrame)
                  else posterior)
    blocks = []
    for b in range(-(-n // BLOCK)):
        rng = rng_for(seed, b)  # a whole block is drawn, then cut: draw i never depends on n
        block = draw_parameters(st, BLOCK, rng)
        for post in posteriors:  # whole rows: the correlations between parameters are kept
            block = pd.concat([block, resample_posterior(post, BLOCK, rng)], axis=1)
        blocks.append(block.iloc[:n - b * BLOCK])
    return pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame()


def draw_parameters(st: Setup, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` draws of every ``[psa]`` parameter: one column per parameter."""
    cols: dict[str, np.ndarray] = {}
    for key, d in st.distributions.items():
        if isinstance(d, Dirichlet):
            shares = d.rvs(n, rng)
            cols.update({name: shares[:, i] for i, name in enumerate(d.parameters)})
        else:  # by quantile, tails cut as validation checked them (Distribution.ppf)
            cols[key] = d.ppf(rng.random(n))
    return pd.DataFrame(cols)


def read_posterior(path: str | Path) -> pd.DataFrame:
    """A posterior sample: parameter columns, and ``weight`` (equal when absent). ``path`` is
    a ``posterior.parquet`` or the calibration folder holding it; of a calibration's
    posterior only the last generation counts (``hhsim.studies.calibration.outputs.final``)."""
    from hhsim.studies.calibration.outputs import final

    path = check_path(path)
    path = input_file(path / "posterior.parquet" if path.is_dir() else path, "posterior", "parquet")
    try:
        post = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a file that is not Parquet
        raise HhsimError(str(path), f"cannot be read as Parquet ({type(err).__name__})",
                         FIX) from None
    if "generation" in post.columns and "weight" in post.columns and not post.empty:
        post = final(post)
    params = [c for c in post.columns if c not in POSTERIOR_LABELS]
    if post.empty or not params:
        raise HhsimError(str(path), "has no draws of any parameter", FIX)
    weight = post["weight"].to_numpy(float) if "weight" in post else np.ones(len(post))
    if not (np.isfinite(weight).all() and (weight >= 0).all() and weight.sum() > 0):
        raise HhsimError(f"{path}: weight", "has negative, missing or all-zero weights",
                         "give non-negative weights that are not all zero")
    return post[params].assign(weight=weight / weight.sum())


def resample_posterior(post: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows of a posterior drawn with probability proportional to ``weight``."""
    rows = rng.choice(len(post), size=n, replace=True, p=post["weight"].to_numpy())
    return post.drop(columns="weight").iloc[rows].reset_index(drop=True)
