"""Batches of runs in three layers: design (what to run), execution (where), store (results).

``points`` runs one experiment at many parameter points (sensitivity analysis, PSA) through
the same three layers.
"""
