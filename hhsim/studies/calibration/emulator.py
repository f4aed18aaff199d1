"""Gaussian-process emulators of a simulator's outputs (scikit-learn), for history matching
and later for sensitivity analysis and an explorer.

One ``GaussianProcessRegressor`` per output, on inputs mapped to the unit cube through each
parameter's prior CDF (a lognormal or beta prior becomes a uniform coordinate, so the
length scales compare like with like). The kernel is ConstantKernel x Matern(nu = 2.5) with
one length scale per input (ARD), plus a WhiteKernel nugget for the simulator's own
run-to-run noise; outputs are normalised (``normalize_y``); hyperparameters are fitted by
maximum marginal likelihood with a few optimizer restarts from a fixed ``random_state``.

The predicted variance includes the nugget: it is the variance of one simulated value at a
point (emulator uncertainty about the mean plus the simulator's noise), not of the mean
alone, which is the conservative choice for ruling points out. Outputs that are not finite
at some points (an estimator with nothing to count) are fitted on their finite points.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from hhsim.core.distributions import Distribution

#: Predictions are made this many points at a time (a 20,000 x 300 cross-covariance: 48 MB).
CHUNK = 20_000
#: BLAS threads while fitting and predicting: the matrices are small (a few hundred runs), and
#: more threads made fitting 5 times slower on a shared 2-core machine.
THREADS = 1


def to_unit(priors: Sequence[Distribution], x: np.ndarray) -> np.ndarray:
    """Points (rows, natural units, one column per prior) as prior CDF values in [0, 1]."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    return np.column_stack([d.frozen.cdf(x[:, j]) for j, d in enumerate(priors)])


def kernel(dimensions: int):
    """ConstantKernel x Matern(nu = 2.5, one length scale per input) + WhiteKernel."""
    return (ConstantKernel(1.0, (1e-3, 1e3))
            * Matern(length_scale=np.full(dimensions, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5)
            + WhiteKernel(1e-2, (1e-8, 1e1)))


@dataclass
class Emulator:
    """Fitted emulators of ``outputs`` over parameters with ``priors`` (``fit_emulator``)."""

    priors: tuple[Distribution, ...]
    outputs: tuple[str, ...]
    gps: tuple[GaussianProcessRegressor, ...]

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (output units, squared) of each output at points ``x`` (rows,
        natural units): two arrays of points x outputs."""
        u = to_unit(self.priors, x)
        mean = np.empty((len(u), len(self.gps)))
        var = np.empty_like(mean)
        with threadpool_limits(THREADS, "blas"):
            for start in range(0, len(u), CHUNK):
                part = u[start:start + CHUNK]
                for k, gp in enumerate(self.gps):
                    m, s = gp.predict(part, return_std=True)
                    mean[start:start + CHUNK, k], var[start:start + CHUNK, k] = m, s * s
        return mean, var

    def loo(self) -> np.ndarray:
        """Leave-one-out standardised errors (points x outputs; NaN where an output had no
        finite value), closed form at the fitted hyperparameters:
        (y_i - mean_-i) / sd_-i = [K^-1 y]_i / sqrt([K^-1]_ii) (Rasmussen & Williams 5.12)."""
        n = max(len(gp.X_train_) for gp in self.gps)
        out = np.full((n, len(self.gps)), np.nan)
        with threadpool_limits(THREADS, "blas"):
            for k, gp in enumerate(self.gps):
                inverse = np.linalg.inv(gp.kernel_(gp.X_train_))
                alpha = inverse @ gp.y_train_
                out[: len(alpha), k] = alpha / np.sqrt(np.diag(inverse))
        return out

    def validate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Standardised errors (y - mean) / sd at held-out points ``x`` with simulated
        outputs ``y`` (points x outputs)."""
        mean, var = self.predict(x)
        return (np.asarray(y, dtype=float) - mean) / np.sqrt(var)


def within_two(z: np.ndarray) -> np.ndarray:
    """Per output (column), the share of finite standardised errors within +-2 (about 95%
    for a well-calibrated emulator)."""
    finite = np.isfinite(z)
    return (np.abs(np.where(finite, z, np.inf)) <= 2).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)


def fit_emulator(
    priors: Sequence[Distribution],
    x: np.ndarray,
    y: np.ndarray,
    outputs: Sequence[str],
    seed: int,
    restarts: int = 3,
) -> Emulator:
    """One GP per output (column of ``y``) at points ``x`` (rows, natural units); ``seed``
    fixes the optimizer restarts."""
    u = to_unit(priors, x)
    y = np.asarray(y, dtype=float)
    gps = []
    for k in range(y.shape[1]):
        keep = np.isfinite(y[:, k])
        gp = GaussianProcessRegressor(kernel(u.shape[1]), normalize_y=True, n_restarts_optimizer=restarts,
                                      random_state=seed)
        with warnings.catch_warnings(), threadpool_limits(THREADS, "blas"):
            # a length scale at its bound (an input that does not matter) is not a failure
            warnings.simplefilter("ignore", ConvergenceWarning)
            gps.append(gp.fit(u[keep], y[keep, k]))
    return Emulator(tuple(priors), tuple(outputs), tuple(gps))
