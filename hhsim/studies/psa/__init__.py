"""Probabilistic sensitivity analysis: parameter draws run through the batch layer, then the
cost-effectiveness plane, acceptability curves, the frontier and the value of information.

``hhsim psa FILE --draws N`` draws the ``[psa]`` parameters (or a calibration posterior),
runs every arm at every draw with common random numbers (``hhsim.batch.points``), and writes
``draws.parquet``, ``ceac.csv``, ``evpi.csv``, ``evppi.csv``, ``psa.json`` and figures
(docs/psa.md).
"""
