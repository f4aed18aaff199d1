"""Batches of runs in three layers: design (what to run), execution (where), store (results)."""
