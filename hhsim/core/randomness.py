"""Random numbers that keep arms comparable (common random numbers).

Every random process has a name. At step ``t`` the process draws one uniform for every
tenant slot, alive or not, from a generator keyed by (run seed, name, step, block). The key
makes the draw independent of everything else in the run: an intervention that adds its
own process, or an arm that needs a second block for a second admission in a month, never
shifts another process's numbers. Tenant ``i`` therefore sees the same ``u`` in every arm
for as long as its path is the same.

Counts are drawn by inverting that single uniform (``poisson_from_uniform``): numpy's own
Poisson and binomial samplers consume a variable number of draws per value.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import special

#: Key of the tenant population's own generator (structure, not outcomes).
POPULATION_KEY = "population"
#: Key of Mesa's generator; it never feeds tenant outcomes.
MESA_KEY = "mesa"


def name_key(name: str) -> int:
    """A fixed 32-bit key for a process name, stable across runs and platforms."""
    return zlib.crc32(name.encode("utf-8"))


class Streams:
    """Per-process, per-step uniforms for ``n`` tenant slots.

    ``entropy`` (the experiment seed) and ``spawn_key`` (``run_spawn_key``) identify the run.
    """

    def __init__(self, entropy: int, spawn_key: tuple[int, ...], n: int) -> None:
        self.entropy = int(entropy)
        self.spawn_key = tuple(int(k) for k in spawn_key)
        self.n = int(n)

    def seed_sequence(self, *key: int | str) -> np.random.SeedSequence:
        """The SeedSequence for a sub-key of this run (names are hashed)."""
        ints = tuple(name_key(k) if isinstance(k, str) else int(k) for k in key)
        return np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key + ints)

    def generator(self, *key: int | str) -> np.random.Generator:
        """A fresh generator for a sub-key of this run."""
        return np.random.Generator(np.random.PCG64(self.seed_sequence(*key)))

    def uniform(self, name: str, step: int, block: int = 0) -> np.ndarray:
        """One float32 uniform in [0, 1) per tenant slot for process ``name`` at ``step``.

        Block ``b`` is a further, independent array for the same step (a second event of
        the same kind within one step).
        """
        return self.generator(name, step, block).random(self.n, dtype=np.float32)

    def normal(self, name: str, step: int, block: int = 0) -> np.ndarray:
        """Standard normal deviates per slot, by inverting this step's uniforms."""
        u = self.uniform(name, step, block).astype(np.float64)
        return special.ndtri(np.clip(u, 1e-12, 1 - 1e-12))


def poisson_from_uniform(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson counts with means ``lam`` by inverting the CDF at ``u`` (one uniform each).

    Meant for small means (monthly rates), in float32. A first pass settles the slots with
    no event; the rest climb the CDF densely while most are still climbing, then on a
    compacted, shrinking set. Returns float32 counts.
    """
    u = np.asarray(u, dtype=np.float32)
    lam = np.asarray(lam, dtype=np.float32)
    counts = np.zeros(u.shape, dtype=np.float32)
    p0 = np.exp(-lam)
    idx = np.flatnonzero(u >= p0)
    if not idx.size:
        return counts
    ua, la = u[idx], lam[idx]
    pmf = p0[idx]
    cdf = pmf.copy()
    found = np.ones(idx.size, dtype=np.float32)
    pos = np.arange(idx.size)
    dense = True
    k = 1
    while pos.size:
        k += 1
        pmf = pmf * la / np.float32(k - 1)
        cdf = cdf + pmf
        # Stop where the CDF no longer grows (round-off deep in the tail).
        more = (ua >= cdf) & (pmf > 0)
        if dense:
            found += more
            if np.count_nonzero(more) < 0.25 * more.size:
                dense = False
                pos = np.flatnonzero(more)
                ua, la, pmf, cdf = ua[pos], la[pos], pmf[pos], cdf[pos]
        else:
            pos = pos[more]
            found[pos] += 1
            ua, la, pmf, cdf = ua[more], la[more], pmf[more], cdf[more]
    counts[idx] = found
    return counts


#: First element of a run's spawn key (later branches are free for parameter draws).
RUN_BRANCH = 0


def run_spawn_key(replication: int) -> tuple[int, int]:
    """Spawn key of replication ``r``: shared by every arm and every parameter draw.

    Arms and parameter draws of one replication therefore face the same random numbers
    (common random numbers), whatever the order in which runs are executed.
    """
    return (RUN_BRANCH, int(replication))
