"""Batches of runs in three layers: design (what to run), execution (where), store (results,
checked against their checksums; written through ``files``: atomic, checksummed, safe names).

``points`` runs one experiment at many parameter points (sensitivity analysis, PSA) through
the same three layers.
"""
