"""Calibration to pilot data and national statistics (docs/calibration.md).

Target files (``targets``) say what was observed and how to simulate its counterpart
(``estimators``); a calibration file (``problem``) says which parameters, with priors, are
calibrated to which targets. ``abc`` runs ABC-SMC with pyabc, ``fast`` a point estimate with
scipy.optimize; ``history_matching`` first rules out implausible regions of the prior with
Gaussian-process emulators (``emulator``); ``outputs`` writes the posterior, the fit table
and the diagnostics, and ``fit`` says how far the calibrated model is from each target (z),
whether its predictive interval can tell if the target is covered, and whether an estimate
sits at a prior bound.
"""
